"""Reads of the protection app."""

from datetime import timedelta

from django.db.models import Count, F, Max, Q, QuerySet
from django.utils import timezone

from .inheritance import PolicySet
from .models import (
    ACTIVE_JOB_STATES,
    UNPROTECTED_STATUSES,
    JobState,
    Machine,
    MachineGroup,
    MachineStatus,
    ReplicationJob,
)

NO_GROUP = "none"

# Sort keys offered by the machine list → ORDER BY. Never-replicated machines sort last in
# both directions: "most recent first" should not open with a page of blanks.
MACHINE_SORTS = {
    "name": (F("name").asc(), "id"),
    "-name": (F("name").desc(), "-id"),
    "status": (F("status").asc(), F("name").asc(), "id"),
    "-status": (F("status").desc(), F("name").asc(), "id"),
    "last_replicated": (F("last_replicated_at").asc(nulls_last=True), F("name").asc(), "id"),
    "-last_replicated": (F("last_replicated_at").desc(nulls_last=True), F("name").asc(), "id"),
}


def machines_of(customer) -> QuerySet[Machine]:
    return Machine.objects.for_customer(customer).select_related("group", "agent")


def groups_of(customer) -> QuerySet[MachineGroup]:
    return MachineGroup.objects.for_customer(customer).annotate(machine_count=Count("machines"))


def machine_search(
    customer,
    *,
    group=None,
    status: str = "",
    platform: str = "",
    protection: str = "",
    q: str = "",
    sort: str = "name",
) -> QuerySet[Machine]:
    """The machine list with its filters applied.

    ``group`` is a ``MachineGroup``, ``NO_GROUP`` for ungrouped machines, or ``None`` for
    all. ``protection`` is ``"protected"`` or ``"unprotected"`` (the dashboard cards link
    with it). ``q`` matches name, OS, external id and IP addresses; the IP list is a JSON
    array searched as its text, which SQLite and PostgreSQL both support.
    """
    machines = machines_of(customer)
    if group == NO_GROUP:
        machines = machines.filter(group__isnull=True)
    elif group is not None:
        machines = machines.filter(group=group)
    if status:
        machines = machines.filter(status=status)
    if platform:
        machines = machines.filter(platform=platform)
    if protection == "protected":
        machines = machines.exclude(status__in=UNPROTECTED_STATUSES)
    elif protection == "unprotected":
        machines = machines.filter(status__in=UNPROTECTED_STATUSES)
    for term in q.split():
        machines = machines.filter(
            Q(name__icontains=term)
            | Q(os_name__icontains=term)
            | Q(external_id__icontains=term)
            | Q(ip_addresses__icontains=term)
        )
    return machines.order_by(*MACHINE_SORTS.get(sort, MACHINE_SORTS["name"]))


def dashboard_summary(customer) -> dict:
    """Counts for the dashboard cards: machines by status, groups, protection coverage."""
    machines = Machine.objects.for_customer(customer)
    by_status = dict(
        machines.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    total = sum(by_status.values())
    unprotected = sum(by_status.get(s, 0) for s in UNPROTECTED_STATUSES)
    return {
        "total": total,
        "protected": total - unprotected,
        "unprotected": unprotected,
        "errors": by_status.get(MachineStatus.ERROR, 0),
        "by_status": [
            (status, by_status.get(status.value, 0))
            for status in MachineStatus
            if by_status.get(status.value)
        ],
        "groups": MachineGroup.objects.for_customer(customer).count(),
        "recent_errors": list(
            machines.filter(Q(status=MachineStatus.ERROR)).order_by("-updated_at")[:5]
        ),
    }


# --- Replication state of machines: RPO, the active job, job history -------------------

# The RPO lag turns red when the last replication is older than this many intervals.
RPO_LATE_FACTOR = 2


def effective_intervals(customer, machines) -> dict[int, int]:
    """Machine id → its effective replication interval in minutes, for a page of machines
    (one query, whatever the page size: see ``PolicySet``)."""
    machines = list(machines)
    if not machines:
        return {}
    policies = PolicySet(customer, machines)
    return {m.pk: policies.effective(m.pk, m.group_id)["interval_minutes"] for m in machines}


def rpo_late(machine: Machine, interval_minutes: int, now=None) -> bool:
    """The RPO lag of a protected machine is more than ``RPO_LATE_FACTOR`` intervals."""
    if not machine.is_protected or machine.last_replicated_at is None:
        return False
    lag = (now or timezone.now()) - machine.last_replicated_at
    return lag > timedelta(minutes=interval_minutes * RPO_LATE_FACTOR)


def active_jobs_by_machine(customer, machine_ids) -> dict[int, ReplicationJob]:
    """Machine id → its active job, for the given machines (one query)."""
    jobs = ReplicationJob.objects.for_customer(customer).filter(
        machine_id__in=list(machine_ids), state__in=ACTIVE_JOB_STATES
    )
    return {job.machine_id: job for job in jobs}


def machines_with_replication(customer, machines) -> list[Machine]:
    """The page's machines with ``effective_interval``, ``rpo_late`` and ``active_job`` set:
    two queries whatever the page size (no per-row queries in the list)."""
    machines = list(machines)
    intervals = effective_intervals(customer, machines)
    active = active_jobs_by_machine(customer, [m.pk for m in machines]) if machines else {}
    now = timezone.now()
    for m in machines:
        m.effective_interval = intervals[m.pk]
        m.rpo_late = rpo_late(m, m.effective_interval, now)
        m.active_job = active.get(m.pk)
    return machines


def jobs_of(customer) -> QuerySet[ReplicationJob]:
    return ReplicationJob.objects.for_customer(customer).select_related("machine", "agent")


def machine_jobs(customer, machine: Machine) -> QuerySet[ReplicationJob]:
    """A machine's job history, newest first (``with_snapshot_counts`` for a page of it)."""
    return (
        ReplicationJob.objects.for_customer(customer)
        .filter(machine=machine)
        .select_related("machine", "agent")
        .order_by("-created_at", "-id")
    )


def with_snapshot_counts(customer, jobs) -> list[ReplicationJob]:
    """The page's jobs with ``snapshot_count`` and ``consistency`` set, in one query. Counted
    for the page only: an aggregate on the paginated queryset would make its COUNT group the
    whole history. ``consistency`` is the weakest of the job's snapshots ("crash" sorts after
    "application"; blank when none was recorded)."""
    jobs = list(jobs)
    rows = (
        ReplicationJob.objects.for_customer(customer)
        .filter(pk__in=[j.pk for j in jobs])
        .annotate(n=Count("snapshots"), weakest=Max("snapshots__consistency"))
        .values_list("pk", "n", "weakest")
        if jobs
        else []
    )
    found = {pk: (n, weakest or "") for pk, n, weakest in rows}
    for job in jobs:
        job.snapshot_count, job.consistency = found.get(job.pk, (0, ""))
    return jobs


def latest_job(customer, machine: Machine) -> ReplicationJob | None:
    """The machine's active job, or else its most recent one."""
    jobs = ReplicationJob.objects.for_customer(customer).filter(machine=machine)
    return (
        jobs.filter(state__in=ACTIVE_JOB_STATES).first()
        or jobs.order_by("-created_at", "-id").first()
    )


ACTIVE = "active"


def job_search(customer, *, state: str = "", machine=None) -> QuerySet[ReplicationJob]:
    """The customer's jobs, newest first; ``state`` is a ``JobState`` or ``"active"``."""
    jobs = jobs_of(customer)
    if state == ACTIVE:
        jobs = jobs.filter(state__in=ACTIVE_JOB_STATES)
    elif state:
        jobs = jobs.filter(state=state)
    if machine is not None:
        jobs = jobs.filter(machine=machine)
    return jobs.order_by("-created_at", "-id")


def job_summary(customer, *, since=None) -> dict:
    """Dashboard figures: jobs running and queued now, jobs failed in the last day."""
    since = since or timezone.now() - timedelta(hours=24)
    jobs = ReplicationJob.objects.for_customer(customer)
    # Filtered on state first (indexed): the customer's whole job history is never scanned.
    active = dict(
        jobs.filter(state__in=ACTIVE_JOB_STATES)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    failed = jobs.filter(state=JobState.FAILED, finished_at__gte=since)
    recent_failed = list(failed.select_related("machine").order_by("-finished_at", "-id")[:5])
    return {
        "running": active.get(JobState.RUNNING, 0) + active.get(JobState.COMMITTING, 0),
        "queued": active.get(JobState.QUEUED, 0),
        "failed": failed.count() if len(recent_failed) == 5 else len(recent_failed),
        "recent_failed": recent_failed,
    }


JOB_LOG_LINES = 200


def job_log(customer, job, limit: int = JOB_LOG_LINES) -> list:
    """The last ``limit`` lines its agent logged while running ``job`` (the agent's events
    that name the job), oldest first: what the machine page shows of the job's steps."""
    if job is None:
        return []
    newest = job.events.filter(customer_id=customer.pk).order_by("-occurred_at", "-id")[:limit]
    return list(reversed(newest))
