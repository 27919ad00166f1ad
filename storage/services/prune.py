"""Prune: delete the snapshots the effective keep rules no longer retain.

The decision is ``storage.prune.plan_prune`` (PBS semantics, customer time zone); this module
feeds it from the database and applies it. Prune deletes Snapshot ROWS only: chunks and index
files stay until garbage collection finds nothing references them, so a prune that races an
upload or a restore never pulls bytes from under it, and a crash mid-prune leaves nothing to
repair (each disk is one transaction).

Never deleted: protected snapshots, and the base of an OPEN upload session — the agent is
uploading a delta against it, and the commit needs the base's index. The pinned set is
recomputed inside the deleting transaction with the disk's open sessions locked.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils import timezone

from protection.inheritance import effective_for_machine
from protection.models import Disk, Machine
from storage.models import (
    MaintenanceKind,
    MaintenanceRun,
    SessionState,
    Snapshot,
    UploadSession,
)
from storage.prune import KeepRules, PruneCandidate, PrunePlan, plan_prune
from tenants.models import Customer

logger = logging.getLogger(__name__)


def customer_zone(customer) -> ZoneInfo:
    """The customer's time zone; UTC if the stored name is unknown to this system."""
    try:
        return ZoneInfo(customer.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning(
            "customer %s: unknown time zone %r, using UTC", customer.slug, customer.time_zone
        )
        return ZoneInfo("UTC")


def keep_rules_for_machine(machine: Machine) -> KeepRules:
    """The machine's effective keep_* settings (machine → group → customer → default)."""
    return KeepRules.from_settings(effective_for_machine(machine).keep)


def _disk_snapshots(customer, disk: Disk, *, lock: bool = False) -> list[Snapshot]:
    query = Snapshot.objects.for_customer(customer).filter(disk=disk).order_by("-created_at")
    if lock:
        query = query.select_for_update()
    return list(query)


def _open_session_bases(customer, disk: Disk, *, lock: bool = False) -> set:
    query = UploadSession.objects.for_customer(customer).filter(
        disk=disk, state=SessionState.OPEN, base__isnull=False
    )
    if lock:
        query = query.select_for_update()
    return set(query.values_list("base_id", flat=True))


def _plan(customer, snapshots: Iterable[Snapshot], rules: KeepRules, pinned: set) -> PrunePlan:
    candidates = [PruneCandidate(s.pk, s.created_at, s.protected) for s in snapshots]
    return plan_prune(candidates, rules, customer_zone(customer), pinned)


def prune_plan_for_disk(customer, disk: Disk, *, rules: KeepRules | None = None) -> PrunePlan:
    """What prune would do to ``disk`` now: its snapshots of every state, the machine's
    effective rules, the customer's time zone, the bases of open uploads pinned."""
    if disk.customer_id != customer.pk:
        raise ValueError("The disk belongs to another customer.")
    if rules is None:
        rules = keep_rules_for_machine(disk.machine)
    snapshots = _disk_snapshots(customer, disk)
    return _plan(customer, snapshots, rules, _open_session_bases(customer, disk))


# --- the preview page's data ---------------------------------------------------------------


@dataclass
class PreviewRow:
    snapshot: Snapshot
    reason: str | None  # why it stays, or None: it would be removed


@dataclass
class DiskPreview:
    disk: Disk
    rows: list[PreviewRow] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return sum(1 for row in self.rows if row.reason is not None)

    @property
    def removed(self) -> int:
        return len(self.rows) - self.kept


def prune_preview_for_machine(customer, machine: Machine, rules: KeepRules) -> list[DiskPreview]:
    """Per disk of ``machine``: its snapshots newest first, each with its fate. Reads only."""
    previews = []
    for disk in Disk.objects.for_customer(customer).filter(machine=machine).order_by("key"):
        snapshots = _disk_snapshots(customer, disk)
        plan = _plan(customer, snapshots, rules, _open_session_bases(customer, disk))
        by_id = {s.pk: s for s in snapshots}
        rows = [PreviewRow(by_id[pk], plan.reason(pk)) for pk in plan.order]
        previews.append(DiskPreview(disk, rows))
    return previews


# --- pruning --------------------------------------------------------------------------------


def _empty_summary(dry_run: bool) -> dict:
    return {
        "customers": 0,
        "disks": 0,
        "kept": 0,
        "removed": 0,
        "removed_ids": [],
        "dry_run": dry_run,
        "errors": [],
    }


def _merge(total: dict, part: dict) -> None:
    for key in ("customers", "disks", "kept", "removed"):
        total[key] += part[key]
    total["removed_ids"].extend(part["removed_ids"])
    total["errors"].extend(part["errors"])


def prune_disk(customer, disk: Disk, rules: KeepRules, *, dry_run: bool = False) -> PrunePlan:
    """Apply the plan to one disk in one transaction; returns the plan that was applied.

    The disk's open sessions and its snapshots are locked (PostgreSQL; SQLite serializes
    writers anyway) and the plan is computed from the locked rows, so a session opened or
    a snapshot protected a moment ago is seen. Deleting a Snapshot row nulls the ``base``
    of snapshots and sessions that pointed at it (SET_NULL); its IndexFile stays (GC's job).
    """
    with transaction.atomic():
        Disk.objects.for_customer(customer).select_for_update().filter(pk=disk.pk).first()
        pinned = _open_session_bases(customer, disk, lock=True)
        snapshots = _disk_snapshots(customer, disk, lock=True)
        plan = _plan(customer, snapshots, rules, pinned)
        if plan.remove and not dry_run:
            Snapshot.objects.for_customer(customer).filter(
                disk=disk, pk__in=plan.remove, protected=False
            ).delete()
    return plan


def prune_customer(customer, *, dry_run: bool = False, now=None) -> dict:
    """Prune every disk of ``customer`` that has snapshots; records a MaintenanceRun.

    Idempotent: a second run finds the survivors exactly as the rules want them. A dry run
    deletes nothing and records no run (it changes nothing, so there is nothing to audit).
    """
    started = now or timezone.now()
    summary = _empty_summary(dry_run)
    summary["customers"] = 1
    disk_ids = Snapshot.objects.for_customer(customer).values_list("disk_id", flat=True).distinct()
    disks = (
        Disk.objects.for_customer(customer)
        .filter(pk__in=list(disk_ids))
        .select_related("machine", "machine__group", "machine__customer")
        .order_by("pk")
    )
    rules_by_machine: dict[int, KeepRules] = {}
    for disk in disks:
        if disk.machine_id not in rules_by_machine:
            rules_by_machine[disk.machine_id] = keep_rules_for_machine(disk.machine)
        plan = prune_disk(customer, disk, rules_by_machine[disk.machine_id], dry_run=dry_run)
        summary["disks"] += 1
        summary["kept"] += len(plan.keep)
        summary["removed"] += len(plan.remove)
        summary["removed_ids"].extend(str(pk) for pk in plan.remove)
    if not dry_run:
        MaintenanceRun.objects.create(
            kind=MaintenanceKind.PRUNE,
            customer=customer,
            started_at=started,
            finished_at=now or timezone.now(),
            ok=True,
            summary=summary,
        )
    logger.info(
        "prune %s: %s disks, %s kept, %s removed%s",
        customer.slug,
        summary["disks"],
        summary["kept"],
        summary["removed"],
        " (dry run)" if dry_run else "",
    )
    return summary


def prune_all(
    dry_run: bool = False,
    *,
    customers: Iterable[Customer] | None = None,
    report: Callable[[Customer, dict], None] | None = None,
) -> dict:
    """Prune every active customer (provider-wide), or the given ``customers``.

    One customer's failure does not stop the others: it is logged, recorded as a failed
    MaintenanceRun and listed in ``errors``. ``report`` is called after each customer.
    """
    if customers is None:
        customers = Customer.objects.filter(is_active=True).order_by("slug")
    total = _empty_summary(dry_run)
    for customer in customers:
        try:
            part = prune_customer(customer, dry_run=dry_run)
        except Exception as exc:  # one customer must not stop the rest
            logger.exception("prune %s failed", customer.slug)
            part = _empty_summary(dry_run)
            part["customers"] = 1
            part["errors"].append(f"{customer.slug}: {exc}")
            if not dry_run:
                MaintenanceRun.objects.create(
                    kind=MaintenanceKind.PRUNE,
                    customer=customer,
                    finished_at=timezone.now(),
                    ok=False,
                    summary=part,
                )
        _merge(total, part)
        if report is not None:
            report(customer, part)
    return total
