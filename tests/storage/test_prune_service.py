"""Prune against the database: the service, the management command and the Celery task."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from acura_portal.periodic import PERIODIC_TASKS
from protection.models import ReplicationPolicy
from storage.models import (
    Chunk,
    IndexFile,
    MaintenanceRun,
    SessionState,
    Snapshot,
    SnapshotState,
    UploadSession,
)
from storage.prune import KeepRules
from storage.services import prune as prune_service
from storage.services.prune import (
    prune_all,
    prune_customer,
    prune_disk,
    prune_plan_for_disk,
)
from storage.tasks import prune_snapshots
from tests.factories import DiskFactory, MachineFactory

NO_RULES = dict.fromkeys(
    ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"], 0
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def set_keep(customer, *, machine=None, group=None, **keep):
    """Store keep rules on one level; unnamed rules are 0 (off) on the customer level."""
    values = {f"keep_{name}": value for name, value in keep.items()}
    if machine is None and group is None:
        values = {**NO_RULES, **values}
    ReplicationPolicy.objects.update_or_create(
        customer=customer, machine=machine, group=group, defaults=values
    )


def make_snapshot(customer, disk, created_at, *, protected=False, state=None, base=None):
    """A Snapshot row with a made-up full IndexFile (prune never reads the store)."""
    checksum = hashlib.sha256(f"{disk.pk}-{created_at.isoformat()}".encode()).hexdigest()
    index = IndexFile.objects.create(
        customer=customer,
        kind="full",
        checksum=checksum,
        chunk_size=1 << 20,
        disk_size=disk.size_bytes,
        entries=disk.size_bytes >> 20,
        stored_bytes=1000,
    )
    return Snapshot.objects.create(
        customer=customer,
        machine=disk.machine,
        disk=disk,
        created_at=created_at,
        base=base,
        disk_size=disk.size_bytes,
        chunk_size=1 << 20,
        index=index,
        index_checksum=checksum,
        state=state or SnapshotState.COMPLETE,
        protected=protected,
    )


def open_session(customer, disk, base, state=SessionState.OPEN):
    return UploadSession.objects.create(
        customer=customer,
        machine=disk.machine,
        disk=disk,
        base=base,
        chunk_size=1 << 20,
        state=state,
    )


def daily_history(customer, disk, days=5, hour=10):
    """One snapshot a day at ``hour`` UTC, oldest first."""
    return [make_snapshot(customer, disk, utc(2024, 5, 1 + d, hour)) for d in range(days)]


def surviving(customer, disk):
    return list(Snapshot.objects.for_customer(customer).filter(disk=disk).order_by("created_at"))


@pytest.fixture
def disk(machine):
    return DiskFactory(machine=machine)


# --- the plan ------------------------------------------------------------------------------


def test_plan_uses_the_machines_effective_rules(customer, machine, disk):
    set_keep(customer, last=4)
    set_keep(customer, machine=machine, last=2)
    snaps = daily_history(customer, disk)
    plan = prune_plan_for_disk(customer, disk)
    assert plan.keep == {snaps[4].pk: "keep-last", snaps[3].pk: "keep-last"}
    assert plan.remove == [snaps[2].pk, snaps[1].pk, snaps[0].pk]


def test_plan_inherits_the_group_rules(customer, machine, disk):
    set_keep(customer, last=4)
    set_keep(customer, group=machine.group, last=1)
    snaps = daily_history(customer, disk)
    assert list(prune_plan_for_disk(customer, disk).keep) == [snaps[4].pk]


def test_plan_counts_days_in_the_customer_time_zone(customer, machine, disk):
    set_keep(customer, daily=5)
    # 21:30 and 22:30 UTC on June 1 are 23:30 June 1 and 00:30 June 2 in Berlin.
    late, later = (make_snapshot(customer, disk, utc(2024, 6, 1, h, 30)) for h in (21, 22))
    assert set(prune_plan_for_disk(customer, disk).keep) == {late.pk, later.pk}
    customer.time_zone = "UTC"
    customer.save()
    assert prune_plan_for_disk(customer, disk).remove == [late.pk]


def test_plan_pins_the_base_of_an_open_session_only(customer, machine, disk):
    set_keep(customer, last=1)
    snaps = daily_history(customer, disk, days=4)
    open_session(customer, disk, snaps[1])
    open_session(customer, DiskFactory(machine=machine), snaps[0])  # another disk's session
    closed = open_session(customer, disk, snaps[0], state=SessionState.COMMITTED)
    assert closed.base == snaps[0]
    plan = prune_plan_for_disk(customer, disk)
    assert plan.keep == {snaps[3].pk: "keep-last", snaps[1].pk: "base of an open upload"}
    assert plan.remove == [snaps[2].pk, snaps[0].pk]


def test_plan_takes_snapshots_of_every_state(customer, machine, disk):
    set_keep(customer, last=1)
    failed = make_snapshot(customer, disk, utc(2024, 5, 2), state=SnapshotState.FAILED)
    old = make_snapshot(customer, disk, utc(2024, 5, 1))
    plan = prune_plan_for_disk(customer, disk)
    assert plan.keep == {failed.pk: "keep-last"}
    assert plan.remove == [old.pk]


def test_plan_refuses_another_customers_disk(customer, other_customer):
    foreign = DiskFactory(machine=MachineFactory(customer=other_customer))
    with pytest.raises(ValueError):
        prune_plan_for_disk(customer, foreign)


# --- pruning -------------------------------------------------------------------------------


def test_prune_deletes_only_snapshot_rows_and_records_a_run(customer, machine, disk):
    set_keep(customer, last=2)
    snaps = daily_history(customer, disk)
    Chunk.objects.create(customer=customer, digest="a" * 64, plain_size=1, stored_size=1)
    index_files = IndexFile.objects.for_customer(customer).count()

    summary = prune_customer(customer)

    assert summary == {
        "customers": 1,
        "disks": 1,
        "kept": 2,
        "removed": 3,
        "removed_ids": [str(s.pk) for s in reversed(snaps[:3])],
        "dry_run": False,
        "errors": [],
    }
    assert surviving(customer, disk) == snaps[3:]
    assert IndexFile.objects.for_customer(customer).count() == index_files  # GC's job
    assert Chunk.objects.for_customer(customer).count() == 1
    run = MaintenanceRun.objects.get(kind="prune", customer=customer)
    assert run.ok is True and run.finished_at is not None
    assert run.summary["removed"] == 3
    json.dumps(summary)  # JSON-able as it is


def test_prune_is_idempotent(customer, machine, disk):
    set_keep(customer, last=1, daily=2, weekly=2)
    for day in range(1, 28):
        for hour in (6, 18):
            make_snapshot(customer, disk, utc(2024, 5, day, hour))
    first = prune_customer(customer)
    assert first["removed"] > 0
    second = prune_customer(customer)
    assert second["removed"] == 0 and second["removed_ids"] == []
    assert second["kept"] == first["kept"]


def test_dry_run_deletes_nothing_and_records_nothing(customer, machine, disk):
    set_keep(customer, last=1)
    snaps = daily_history(customer, disk, days=3)
    summary = prune_customer(customer, dry_run=True)
    assert summary["dry_run"] is True
    assert summary["removed_ids"] == [str(snaps[1].pk), str(snaps[0].pk)]
    assert surviving(customer, disk) == snaps
    assert not MaintenanceRun.objects.filter(customer=customer).exists()


def test_protected_and_open_session_bases_survive(customer, machine, disk):
    set_keep(customer, last=1)
    old_protected = make_snapshot(customer, disk, utc(2024, 1, 1), protected=True)
    snaps = daily_history(customer, disk, days=4)
    open_session(customer, disk, snaps[0])
    prune_customer(customer)
    assert surviving(customer, disk) == [old_protected, snaps[0], snaps[3]]


def test_session_opened_after_planning_is_seen_by_the_delete(customer, machine, disk):
    set_keep(customer, last=1)
    snaps = daily_history(customer, disk, days=3)
    assert snaps[0].pk in prune_plan_for_disk(customer, disk).remove
    open_session(customer, disk, snaps[0])  # opened between preview and prune
    prune_disk(customer, disk, KeepRules(last=1))
    assert surviving(customer, disk) == [snaps[0], snaps[2]]


def test_deleting_a_referenced_snapshot_nulls_the_references(customer, machine, disk):
    set_keep(customer, last=1)
    first = make_snapshot(customer, disk, utc(2024, 5, 1))
    second = make_snapshot(customer, disk, utc(2024, 5, 2), base=first)
    committed = open_session(customer, disk, first, state=SessionState.COMMITTED)
    committed.snapshot = first
    committed.save()
    aborted = open_session(customer, disk, first, state=SessionState.ABORTED)

    assert prune_customer(customer)["removed_ids"] == [str(first.pk)]

    second.refresh_from_db()
    committed.refresh_from_db()
    aborted.refresh_from_db()
    assert second.base is None
    assert committed.base is None and committed.snapshot is None
    assert aborted.base is None
    assert IndexFile.objects.for_customer(customer).filter(pk=first.index_id).exists()


def test_every_disk_of_every_machine_is_pruned_by_its_own_rules(customer, machine, disk):
    set_keep(customer, last=1)
    set_keep(customer, machine=machine, last=3)
    other_machine = MachineFactory(customer=customer, group=None)
    other_disk = DiskFactory(machine=other_machine)
    daily_history(customer, disk)
    daily_history(customer, other_disk)
    DiskFactory(machine=machine)  # a disk without snapshots is not counted
    summary = prune_customer(customer)
    assert summary["disks"] == 2
    assert len(surviving(customer, disk)) == 3
    assert len(surviving(customer, other_disk)) == 1


def test_no_keep_rule_keeps_everything(customer, machine, disk):
    set_keep(customer)  # all zero
    snaps = daily_history(customer, disk, days=3)
    assert prune_customer(customer)["removed"] == 0
    assert surviving(customer, disk) == snaps


def test_prune_customer_leaves_other_customers_alone(customer, other_customer, machine, disk):
    set_keep(customer, last=1)
    set_keep(other_customer, last=1)
    foreign_disk = DiskFactory(machine=MachineFactory(customer=other_customer))
    foreign = daily_history(other_customer, foreign_disk, days=3)
    daily_history(customer, disk, days=3)
    prune_customer(customer)
    assert surviving(other_customer, foreign_disk) == foreign


def test_prune_all_covers_active_customers_only(customer, other_customer, machine, disk):
    set_keep(customer, last=1)
    set_keep(other_customer, last=1)
    foreign_disk = DiskFactory(machine=MachineFactory(customer=other_customer))
    daily_history(customer, disk, days=3)
    foreign = daily_history(other_customer, foreign_disk, days=3)
    other_customer.is_active = False
    other_customer.save()
    summary = prune_all()
    assert summary["customers"] == 1 and summary["removed"] == 2
    assert surviving(other_customer, foreign_disk) == foreign


def test_one_failing_customer_does_not_stop_the_others(
    customer, other_customer, machine, disk, monkeypatch
):
    set_keep(customer, last=1)
    daily_history(customer, disk, days=3)
    real = prune_service.prune_customer

    def flaky(target, **kwargs):
        if target == other_customer:
            raise RuntimeError("disk on fire")
        return real(target, **kwargs)

    monkeypatch.setattr(prune_service, "prune_customer", flaky)
    summary = prune_all()
    assert summary["customers"] == 2 and summary["removed"] == 2
    assert summary["errors"] == ["globex: disk on fire"]
    failed = MaintenanceRun.objects.get(customer=other_customer)
    assert failed.ok is False


# --- the management command ----------------------------------------------------------------


def run_command(*args) -> list[str]:
    out = StringIO()
    call_command("prune_snapshots", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_command_prints_a_line_per_customer_and_the_json_summary_last(
    customer, other_customer, machine, disk
):
    set_keep(customer, last=1)
    snaps = daily_history(customer, disk, days=3)
    lines = run_command()
    summary = json.loads(lines[-1])
    assert summary["customers"] == 2 and summary["removed"] == 2
    assert summary["removed_ids"] == [str(snaps[1].pk), str(snaps[0].pk)]
    assert summary["dry_run"] is False
    assert "acme: 1 disk(s), 1 kept, 2 removed" in lines
    assert any(line.startswith("globex: 0 disk(s)") for line in lines)
    assert surviving(customer, disk) == [snaps[2]]


def test_command_dry_run_deletes_nothing(customer, machine, disk):
    set_keep(customer, last=1)
    snaps = daily_history(customer, disk, days=3)
    lines = run_command("--dry-run")
    summary = json.loads(lines[-1])
    assert summary["dry_run"] is True and summary["removed"] == 2
    assert "acme: 1 disk(s), 1 kept, 2 would remove" in lines
    assert surviving(customer, disk) == snaps


def test_command_for_one_customer(customer, other_customer, machine, disk):
    set_keep(customer, last=1)
    set_keep(other_customer, last=1)
    foreign_disk = DiskFactory(machine=MachineFactory(customer=other_customer))
    foreign = daily_history(other_customer, foreign_disk, days=3)
    daily_history(customer, disk, days=3)
    summary = json.loads(run_command("--customer", "acme")[-1])
    assert summary["customers"] == 1 and summary["removed"] == 2
    assert surviving(other_customer, foreign_disk) == foreign


def test_command_refuses_an_unknown_slug(customer):
    with pytest.raises(CommandError, match="nope"):
        run_command("--customer", "nope")


def test_command_fails_when_a_customer_fails(customer, machine, disk, monkeypatch):
    def broken(target, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(prune_service, "prune_customer", broken)
    with pytest.raises(CommandError, match="boom"):
        run_command("--customer", "acme")


# --- the task and its schedule -------------------------------------------------------------


def test_task_prunes_every_customer(customer, machine, disk):
    set_keep(customer, last=2)
    snaps = daily_history(customer, disk, days=4)
    result = prune_snapshots.apply().get()
    assert result["removed"] == 2 and result["dry_run"] is False
    assert surviving(customer, disk) == snaps[2:]
    assert prune_snapshots.apply(kwargs={"dry_run": True}).get()["removed"] == 0


def test_task_is_scheduled_hourly(db):
    spec = next(s for s in PERIODIC_TASKS if s.task == "storage.tasks.prune_snapshots")
    assert spec.name == "Storage: prune snapshots"
    assert spec.every_seconds == 3600
    task = PeriodicTask.objects.get(name=spec.name)
    assert task.task == "storage.tasks.prune_snapshots"
    assert task.interval.every == 3600


def test_history_spanning_months_keeps_what_the_rules_say(customer, machine, disk):
    """The default-like policy over three months of hourly-ish snapshots, end to end."""
    set_keep(customer, last=3, daily=7, weekly=4, monthly=3)
    start = utc(2024, 3, 1)
    for n in range(0, 92 * 24, 5):  # every 5 hours for 92 days
        make_snapshot(customer, disk, start + timedelta(hours=n))
    summary = prune_customer(customer)
    kept = summary["kept"]
    assert kept <= 3 + 7 + 4 + 3
    assert kept == Snapshot.objects.for_customer(customer).count()
    assert prune_customer(customer)["removed"] == 0
