"""Services of machines and groups: effects, counts, tenant checks, all-or-nothing."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from protection.models import Machine, MachineGroup, MachineStatus, ReplicationPolicy
from protection.services import machines as services
from tests.factories import MachineFactory, MachineGroupFactory


def _statuses(*machines):
    return [Machine.objects.all_customers().get(pk=m.pk).status for m in machines]


@pytest.fixture
def foreign_machine(other_customer):
    return MachineFactory(customer=other_customer, status=MachineStatus.UNPROTECTED)


def test_start_protection_protects_unprotected_and_skips_protected(customer):
    discovered = MachineFactory(customer=customer, status=MachineStatus.DISCOVERED)
    unprotected = MachineFactory(customer=customer, status=MachineStatus.UNPROTECTED)
    syncing = MachineFactory(customer=customer, status=MachineStatus.IN_SYNC)

    changed, skipped = services.machines_start_protection(
        customer, [discovered, unprotected, syncing]
    )

    assert (changed, skipped) == (2, 1)
    assert _statuses(discovered, unprotected, syncing) == [
        MachineStatus.PROTECTED,
        MachineStatus.PROTECTED,
        MachineStatus.IN_SYNC,
    ]


def test_start_protection_counts_a_machine_given_twice_once(customer):
    machine = MachineFactory(customer=customer)
    assert services.machines_start_protection(customer, [machine, machine]) == (1, 0)


def test_start_protection_refuses_a_foreign_machine_and_changes_nothing(customer, foreign_machine):
    mine = MachineFactory(customer=customer, status=MachineStatus.UNPROTECTED)
    with pytest.raises(ValidationError, match="do not exist"):
        services.machines_start_protection(customer, [mine, foreign_machine])
    assert _statuses(mine, foreign_machine) == [MachineStatus.UNPROTECTED] * 2


def test_stop_protection_clears_schedule_state_and_skips_unprotected(customer):
    last = timezone.now()
    failing = MachineFactory(
        customer=customer,
        status=MachineStatus.ERROR,
        status_message="disk read failed",
        next_run_at=timezone.now(),
        last_replicated_at=last,
    )
    idle = MachineFactory(customer=customer, status=MachineStatus.DISCOVERED)

    assert services.machines_stop_protection(customer, [failing, idle]) == (1, 1)

    failing.refresh_from_db()
    assert failing.status == MachineStatus.UNPROTECTED
    assert failing.status_message == ""
    assert failing.next_run_at is None
    assert failing.last_replicated_at == last
    assert _statuses(idle) == [MachineStatus.DISCOVERED]


def test_stop_protection_refuses_a_foreign_machine(customer, other_customer):
    theirs = MachineFactory(customer=other_customer, status=MachineStatus.IN_SYNC)
    with pytest.raises(ValidationError):
        services.machines_stop_protection(customer, [theirs])
    assert _statuses(theirs) == [MachineStatus.IN_SYNC]


def test_move_to_group_and_to_no_group(customer, group):
    other = MachineGroupFactory(customer=customer, name="DB")
    a = MachineFactory(customer=customer, group=group)
    b = MachineFactory(customer=customer, group=other)

    assert services.machines_move(customer, [a, b], other) == (1, 1)
    assert set(other.machines.all()) == {a, b}

    assert services.machines_move(customer, [a, b], None) == (2, 0)
    assert Machine.objects.for_customer(customer).filter(group__isnull=True).count() == 2


def test_move_refuses_a_foreign_group(customer, other_customer, machine, group):
    theirs = MachineGroupFactory(customer=other_customer)
    with pytest.raises(ValidationError, match="group does not exist"):
        services.machines_move(customer, [machine], theirs)
    machine.refresh_from_db()
    assert machine.group == group


def test_move_refuses_a_foreign_machine(customer, machine, foreign_machine, group):
    target = MachineGroupFactory(customer=customer)
    with pytest.raises(ValidationError):
        services.machines_move(customer, [machine, foreign_machine], target)
    machine.refresh_from_db()
    assert machine.group == group


def test_group_create_and_duplicate_names(customer, other_customer):
    group = services.group_create(customer, name="  Web servers ", description="front")
    assert (group.name, group.description, group.customer) == ("Web servers", "front", customer)

    for name in ("Web servers", "web SERVERS"):
        with pytest.raises(ValidationError) as exc:
            services.group_create(customer, name=name)
        assert "already exists" in exc.value.message_dict["name"][0]

    # Names are unique per customer, not globally.
    assert services.group_create(other_customer, name="Web servers").customer == other_customer


def test_group_create_needs_a_name(customer):
    with pytest.raises(ValidationError) as exc:
        services.group_create(customer, name="   ")
    assert "name" in exc.value.message_dict
    assert not MachineGroup.objects.for_customer(customer).exists()


def test_group_update_renames_and_refuses_duplicates(customer, group):
    other = MachineGroupFactory(customer=customer, name="DB")
    services.group_update(customer, group, name="Web", description="new")
    group.refresh_from_db()
    assert (group.name, group.description) == ("Web", "new")

    # Keeping its own name (or changing its case) is not a duplicate.
    services.group_update(customer, group, name="WEB")

    with pytest.raises(ValidationError, match="already exists"):
        services.group_update(customer, group, name="db")
    other.refresh_from_db()
    group.refresh_from_db()
    assert (group.name, other.name) == ("WEB", "DB")


def test_group_update_refuses_a_foreign_group(customer, other_customer):
    theirs = MachineGroupFactory(customer=other_customer, name="Theirs")
    with pytest.raises(ValidationError):
        services.group_update(customer, theirs, name="Mine now")
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"


def test_group_delete_moves_machines_then_deletes(customer, group):
    target = MachineGroupFactory(customer=customer, name="DB")
    machines = MachineFactory.create_batch(3, customer=customer, group=group)
    ReplicationPolicy.objects.create(customer=customer, group=group, interval_minutes=30)

    assert services.group_delete(customer, group, target) == 3

    assert not MachineGroup.objects.for_customer(customer).filter(pk=group.pk).exists()
    assert set(target.machines.all()) == set(machines)
    assert not ReplicationPolicy.objects.for_customer(customer).exists()


def test_group_delete_to_no_group_and_empty_group(customer, group):
    machine = MachineFactory(customer=customer, group=group)
    empty = MachineGroupFactory(customer=customer)
    assert services.group_delete(customer, empty) == 0
    assert services.group_delete(customer, group, None) == 1
    machine.refresh_from_db()
    assert machine.group is None


@pytest.mark.parametrize("target", ["foreign", "itself"])
def test_group_delete_refuses_bad_targets_and_changes_nothing(
    customer, other_customer, group, machine, target
):
    move_to = MachineGroupFactory(customer=other_customer) if target == "foreign" else group
    with pytest.raises(ValidationError):
        services.group_delete(customer, group, move_to)
    machine.refresh_from_db()
    assert machine.group == group


def test_group_delete_refuses_a_foreign_group(customer, other_customer):
    theirs = MachineGroupFactory(customer=other_customer)
    with pytest.raises(ValidationError):
        services.group_delete(customer, theirs)
    assert MachineGroup.objects.for_customer(other_customer).filter(pk=theirs.pk).exists()


def test_move_refused_when_a_machine_would_keep_no_snapshots(customer):
    from protection.models import KEEP_FIELDS
    from protection.services.policy import policy_update

    daily = MachineGroupFactory(customer=customer, name="Keeps daily")
    no_daily = MachineGroupFactory(customer=customer, name="No daily")
    policy_update(customer, daily, {"keep_daily": 7})
    policy_update(customer, no_daily, {"keep_daily": 0})
    machine = MachineFactory(customer=customer, group=daily, name="db-01")
    # The machine zeroes every rule but daily, which it inherits from its group.
    policy_update(customer, machine, {name: 0 for name in KEEP_FIELDS if name != "keep_daily"})

    with pytest.raises(ValidationError, match="db-01 would keep no snapshots"):
        services.machines_move(customer, [machine], no_daily)
    machine.refresh_from_db()
    assert machine.group == daily
    # Machines without settings of their own move freely.
    plain = MachineFactory(customer=customer, group=daily)
    assert services.machines_move(customer, [plain], no_daily) == (1, 0)
