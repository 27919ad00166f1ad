"""Beat's dispatcher: queue the replications the schedules say are due.

For every active customer it reads, in a fixed number of queries whatever the number of
machines, the protected machines with their last job's creation time, whether a job is
active and their agent's liveness, plus every replication policy of the customer; the
effective settings are merged in memory (``merge_levels``, cached per level). A machine is
queued (trigger *schedule*) when replication is enabled, its interval has elapsed since its
last job was created (at once when it never had one), the moment lies in its window, its
agent is online and no job is active. Every protected machine's ``next_run_at`` is written
with the moment the schedule will run it (only the values that changed, in bulk).

Idempotent: a second run finds the new jobs active; two dispatchers racing meet the
one-active-job constraint, and the loser counts a conflict. The database is the truth, so a
lost or repeated beat message only delays or repeats a harmless pass.
"""

import logging
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone

from tenants.models import Customer

from ..inheritance import EffectiveSettings, PolicySet
from ..models import ACTIVE_JOB_STATES, JobTrigger, Machine, MachineStatus, ReplicationJob
from ..schedule import next_run
from .jobs import JobError, job_queue
from .machines import PROTECTED_STATUSES

logger = logging.getLogger(__name__)

# Statuses the schedule runs (Paused keeps protection but not the schedule).
SCHEDULED_STATUSES = (
    MachineStatus.PROTECTED,
    MachineStatus.INITIAL_SYNC,
    MachineStatus.IN_SYNC,
    MachineStatus.REPLICATING,
    MachineStatus.ERROR,
)
AGENT_ONLINE = "online"  # clouds.models.AgentStatus.ONLINE (protection does not import clouds)
NEXT_RUN_BATCH = 500

COUNTS = (
    "machines",
    "queued",
    "not_due",
    "disabled",
    "paused",
    "no_agent",
    "agent_offline",
    "busy",
    "conflicts",
    "next_run_updated",
)


def _machines(customer):
    jobs = ReplicationJob.objects.for_customer(customer).filter(machine=OuterRef("pk"))
    return (
        Machine.objects.for_customer(customer)
        .filter(status__in=PROTECTED_STATUSES)
        .only("id", "customer_id", "name", "status", "group_id", "agent_id", "next_run_at")
        .annotate(
            last_job_at=Subquery(jobs.order_by("-created_at").values("created_at")[:1]),
            busy=Exists(jobs.filter(state__in=ACTIVE_JOB_STATES)),
            agent_status=F("agent__status"),
            agent_seen_at=F("agent__last_seen_at"),
        )
        .order_by("id")
    )


def _schedule(machine, effective: EffectiveSettings, now, last_job_at, zone):
    return next_run(
        now,
        last_job_at,
        interval_minutes=effective["interval_minutes"],
        window_enabled=effective["window_enabled"],
        window=effective["window"],
        days=effective["window_days"],
        zone=zone,
    )


def dispatch_customer(customer, now: datetime) -> Counter:
    """Queue the due replications of one customer and refresh its machines' next run."""
    counts: Counter = Counter()
    zone = ZoneInfo(customer.time_zone)
    policies = PolicySet(customer)
    seen_after = now - timedelta(seconds=settings.AGENT_OFFLINE_AFTER_SECONDS)
    changed = []
    for machine in _machines(customer):
        counts["machines"] += 1
        effective = policies.effective(machine.pk, machine.group_id)
        run_at = None
        if machine.status not in SCHEDULED_STATUSES:
            counts["paused"] += 1
        elif not effective["enabled"]:
            counts["disabled"] += 1
        elif machine.agent_id is None:
            counts["no_agent"] += 1
        else:
            run_at = _schedule(machine, effective, now, machine.last_job_at, zone)
            if run_at is None or run_at > now:
                counts["not_due"] += 1
            elif machine.busy:
                counts["busy"] += 1
            elif machine.agent_status != AGENT_ONLINE or (
                machine.agent_seen_at is None or machine.agent_seen_at < seen_after
            ):
                counts["agent_offline"] += 1
            else:
                try:
                    job = job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
                except JobError as exc:
                    counts["conflicts" if exc.code == "conflict" else exc.code] += 1
                else:
                    counts["queued"] += 1
                    run_at = _schedule(machine, effective, now, max(now, job.created_at), zone)
        if machine.next_run_at != run_at:
            machine.next_run_at = run_at
            changed.append(machine)
    if changed:
        # Only machines still protected: Stop Protection since our read keeps its None.
        Machine.objects.for_customer(customer).filter(status__in=PROTECTED_STATUSES).bulk_update(
            changed, ["next_run_at"], batch_size=NEXT_RUN_BATCH
        )
        counts["next_run_updated"] += len(changed)
    return counts


def dispatch_due(now: datetime | None = None, *, customers=None) -> dict:
    """One dispatch pass over every active customer with protected machines (or the given
    ``customers``). One customer's failure does not stop the others; it is logged and
    listed in ``errors``. Returns counts for the log."""
    now = now or timezone.now()
    if customers is None:
        with_machines = Machine.objects.all_customers().filter(status__in=PROTECTED_STATUSES)
        customers = Customer.objects.filter(
            is_active=True, pk__in=with_machines.values("customer_id")
        ).order_by("pk")
    total = Counter(dict.fromkeys(COUNTS, 0))
    errors = []
    customer_count = 0
    for customer in customers:
        customer_count += 1
        try:
            total.update(dispatch_customer(customer, now))
        except Exception as exc:  # one customer must not stop the rest
            logger.exception("dispatch for customer %s failed", customer.slug)
            errors.append(f"{customer.slug}: {exc}")
    return {"customers": customer_count, **total, "errors": errors}
