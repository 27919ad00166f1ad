"""The reconciler: repairs what a lost broker message or a worker that died between two
writes left behind. The database is the truth; every repair is a conditional write that
re-checks its reason, so running it twice (or beside the agents) changes nothing more.

* running / committing jobs without progress for ``JOB_STUCK_MINUTES`` → failed;
* queued jobs no agent took within ``JOB_QUEUE_TIMEOUT_HOURS`` → failed;
* active jobs whose agent was removed → failed;
* a machine showing *Initial sync* / *Replicating* without an active job → the status its
  last finished job gives it; a machine with a running job that still shows its old status
  → *Initial sync* / *Replicating*.

Upload sessions of ended jobs belong to storage, which closes them itself
(``storage.services.job_sessions``): protection does not import storage.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from ..models import ACTIVE_JOB_STATES, JobState, Machine, MachineStatus, ReplicationJob
from .jobs import job_fail, jobs_fail_stuck, machine_settled_status

logger = logging.getLogger(__name__)

SHOWS_RUNNING = (MachineStatus.INITIAL_SYNC, MachineStatus.REPLICATING)
SHOWS_SETTLED = (MachineStatus.PROTECTED, MachineStatus.IN_SYNC, MachineStatus.ERROR)
RUNNING_STATES = (JobState.RUNNING, JobState.COMMITTING)


def jobs_fail_unclaimed(now: datetime, timeout: timedelta) -> int:
    """Fail queued jobs that no agent took within ``timeout`` (every customer)."""
    cutoff = now - timeout
    hours = timeout.total_seconds() / 3600
    message = (
        f"No agent took the job within {hours:g} hours (is the agent offline?); the job was failed."
    )
    jobs = ReplicationJob.objects.all_customers().filter(
        state=JobState.QUEUED, created_at__lt=cutoff
    )
    return sum(job_fail(job, message, from_states=(JobState.QUEUED,)) for job in jobs)


def jobs_fail_agentless() -> int:
    """Fail active jobs whose agent was removed: nobody will take or finish them."""
    message = "The agent of this job was removed; the job was failed."
    jobs = ReplicationJob.objects.all_customers().filter(
        state__in=ACTIVE_JOB_STATES, agent__isnull=True
    )
    return sum(job_fail(job, message) for job in jobs)


def _active_job_exists(states=ACTIVE_JOB_STATES):
    return Exists(
        ReplicationJob.objects.all_customers().filter(machine=OuterRef("pk"), state__in=states)
    )


def machines_repair_status(now: datetime) -> int:
    """Machine statuses that disagree with their jobs, put right (see module doc)."""
    repaired = 0
    idle = Machine.objects.all_customers().filter(~_active_job_exists(), status__in=SHOWS_RUNNING)
    for machine in idle.only("id", "customer_id", "status", "last_replicated_at"):
        status, message = machine_settled_status(machine.customer_id, machine)
        repaired += (
            Machine.objects.for_customer(machine.customer_id)
            .filter(~_active_job_exists(), pk=machine.pk, status=machine.status)
            .update(status=status, status_message=message, updated_at=now)
        )
    working = Machine.objects.all_customers().filter(
        _active_job_exists(RUNNING_STATES), status__in=SHOWS_SETTLED
    )
    for machine in working.only("id", "customer_id", "status", "last_replicated_at"):
        status = (
            MachineStatus.REPLICATING if machine.last_replicated_at else MachineStatus.INITIAL_SYNC
        )
        repaired += (
            Machine.objects.for_customer(machine.customer_id)
            .filter(_active_job_exists(RUNNING_STATES), pk=machine.pk, status=machine.status)
            .update(status=status, status_message="", updated_at=now)
        )
    return repaired


def jobs_reconcile(now: datetime | None = None) -> dict:
    """One reconciler pass over every customer; returns what it repaired."""
    now = now or timezone.now()
    summary = {
        "stuck_failed": jobs_fail_stuck(now, timedelta(minutes=settings.JOB_STUCK_MINUTES)),
        "unclaimed_failed": jobs_fail_unclaimed(
            now, timedelta(hours=settings.JOB_QUEUE_TIMEOUT_HOURS)
        ),
        "agentless_failed": jobs_fail_agentless(),
        "machines_repaired": machines_repair_status(now),
    }
    if any(summary.values()):
        logger.warning("reconciler repaired: %s", summary)
    return summary
