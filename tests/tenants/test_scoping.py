"""The tenant-scoping mechanism: unscoped queries are refused, scoped ones run."""

import pytest

from protection.models import Disk, Machine, MachineGroup
from tenants.scoping import TenantScopeError
from tests.factories import DiskFactory, MachineFactory, MachineGroupFactory


@pytest.fixture
def two_tenants(customer, other_customer):
    mine = MachineFactory(customer=customer)
    theirs = MachineFactory(customer=other_customer)
    DiskFactory(machine=mine)
    DiskFactory(machine=theirs)
    return mine, theirs


@pytest.mark.parametrize(
    "run",
    [
        lambda: list(Machine.objects.all()),
        lambda: Machine.objects.count(),
        lambda: Machine.objects.exists(),
        lambda: Machine.objects.filter(name__startswith="vm").first(),
        lambda: Machine.objects.get(pk=1),
        lambda: Machine.objects.update(name="x"),
        lambda: Machine.objects.all().delete(),
        lambda: Machine.objects.aggregate(n=__import__("django").db.models.Count("id")),
        lambda: list(Machine.objects.iterator()),
        lambda: list(Machine.objects.exclude(customer_id=1)),
        lambda: list(Machine.objects.filter(group__customer_id=1)),
    ],
    ids=[
        "iterate",
        "count",
        "exists",
        "first",
        "get",
        "update",
        "delete",
        "aggregate",
        "iterator",
        "exclude-is-not-scope",
        "join-is-not-scope",
    ],
)
def test_unscoped_queries_are_refused(two_tenants, run):
    with pytest.raises(TenantScopeError, match="Unscoped query on tenant-owned model Machine"):
        run()


def test_for_customer_returns_only_that_customers_rows(two_tenants, customer):
    mine, _theirs = two_tenants
    assert list(Machine.objects.for_customer(customer)) == [mine]
    assert Disk.objects.for_customer(customer).get().machine == mine


def test_related_managers_and_prefetch_are_scoped_by_their_parent(two_tenants, customer):
    mine, _ = two_tenants
    assert mine.disks.count() == 1
    assert list(mine.group.machines.all()) == [mine]
    machines = Machine.objects.for_customer(customer).prefetch_related("disks")
    assert [len(m.disks.all()) for m in machines] == [1]


def test_unique_validation_runs_through_the_mechanism(customer):
    MachineGroupFactory(customer=customer, name="Web")
    group = MachineGroup(customer=customer, name="Web")
    with pytest.raises(Exception, match="already exists"):
        group.full_clean()


def test_all_customers_is_the_explicit_escape_hatch(two_tenants):
    assert Machine.objects.all_customers().count() == 2
    assert Machine.objects.all_customers().filter(name="nope").count() == 0


def test_for_customer_requires_a_customer():
    with pytest.raises(TenantScopeError):
        Machine.objects.for_customer(None)


def test_none_is_allowed(db):
    assert list(Machine.objects.none()) == []
