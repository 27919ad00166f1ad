"""The demo fixture creates machines for the quick start's demo customer, idempotently."""

import pytest
from django.core.management import call_command

from protection.models import Disk, Machine, MachineGroup, MachineStatus
from tests.factories import CustomerFactory


@pytest.fixture
def demo(db):
    return CustomerFactory(slug="demo", name="Demo Customer")


def test_loaddata_creates_grouped_machines_with_disks(demo):
    call_command("loaddata", "demo_machines", verbosity=0)
    machines = Machine.objects.for_customer(demo)
    assert machines.count() == 9
    assert MachineGroup.objects.for_customer(demo).count() == 3
    assert Disk.objects.for_customer(demo).count() == 14
    db01 = machines.get(name="db-01")
    assert db01.group.name == "Databases"
    assert db01.disks.get(key="2001").size_bytes == 500 * 2**30
    # Windows agents report machines as Discovered, the others as Unprotected.
    assert set(machines.filter(platform="windows").values_list("status", flat=True)) == {
        MachineStatus.DISCOVERED
    }
    assert machines.get(name="jump-01").group is None


def test_loading_twice_changes_nothing(demo):
    call_command("loaddata", "demo_machines", verbosity=0)
    call_command("loaddata", "demo_machines", verbosity=0)
    assert Machine.objects.for_customer(demo).count() == 9
    assert Disk.objects.for_customer(demo).count() == 14


def test_fixture_needs_the_demo_customer(db):
    with pytest.raises(Exception, match="Problem installing fixture"):
        call_command("loaddata", "demo_machines", verbosity=0)
