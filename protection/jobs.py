"""Replication jobs: the state machine and the machine status that follows it.

queued → running → committing → succeeded | failed | cancelled. Every transition is a
conditional UPDATE on the expected state, so two writers (the agent reporting a result, beat
failing a stuck job, a user cancelling) can never both win: the loser sees ``JobError`` and
the row is what the winner wrote. "At most one active job per machine" is the partial unique
constraint ``job_one_active_per_machine``; creating a second one is a clean ``conflict``.

The machine's status follows its jobs: a protected machine's first job is its *Initial
sync*, later ones show *Replicating*; success gives *In sync* (and the last-replicated time
RPO is measured from), failure *Error* with the message. Paused machines keep *Paused*.
"""

from collections.abc import Iterable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import (
    ACTIVE_JOB_STATES,
    UNPROTECTED_STATUSES,
    JobState,
    JobTrigger,
    Machine,
    MachineStatus,
    ReplicationJob,
)

COUNTERS = ("bytes_done", "bytes_total", "bytes_read", "bytes_sent", "new_chunks")
MAX_COUNTER = 2**63 - 1
COMMITTING_PHASE = "committing"
# The heartbeat tells an agent about cancelled jobs for this long (it may be mid-upload).
CANCEL_NOTICE = timedelta(hours=1)


class JobError(Exception):
    """A job operation refused; ``code``: conflict, not_protected, no_agent, not_running,
    invalid, not_found. ``job`` is the job in the way, when there is one."""

    def __init__(self, message: str, *, code: str, job: ReplicationJob | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.job = job


def active_job(customer, machine) -> ReplicationJob | None:
    return (
        ReplicationJob.objects.for_customer(customer)
        .filter(machine=machine, state__in=ACTIVE_JOB_STATES)
        .first()
    )


def _require_protected(machine: Machine) -> None:
    if machine.status in UNPROTECTED_STATUSES:
        raise JobError(
            f"Machine {machine.name} is not protected: start protection in the portal first.",
            code="not_protected",
        )


def _create(customer, machine: Machine, **fields) -> ReplicationJob:
    try:
        with transaction.atomic():
            return ReplicationJob.objects.create(customer=customer, machine=machine, **fields)
    except IntegrityError:
        job = active_job(customer, machine)
        raise JobError(
            f"Machine {machine.name} already has an active replication job"
            + (f" (job {job.pk}, {job.get_state_display().lower()})." if job else "."),
            code="conflict",
            job=job,
        ) from None


def job_queue(customer, machine: Machine, *, trigger: str, requested_by=None) -> ReplicationJob:
    """Queue a replication of ``machine`` for its agent (the schedule, or *Replicate now*)."""
    if machine.customer_id != customer.pk:
        raise JobError("No such machine.", code="not_found")
    _require_protected(machine)
    if machine.agent_id is None:
        raise JobError(
            f"No agent replicates machine {machine.name} yet: install an agent that reports it.",
            code="no_agent",
        )
    return _create(
        customer,
        machine,
        agent_id=machine.agent_id,
        trigger=trigger,
        requested_by=requested_by,
    )


def _mark_started(job: ReplicationJob, now) -> None:
    """The machine shows the replication: its first is the initial sync."""
    machine = job.machine
    if machine.status == MachineStatus.PAUSED:
        return
    status = (
        MachineStatus.INITIAL_SYNC
        if machine.last_replicated_at is None
        else MachineStatus.REPLICATING
    )
    Machine.objects.for_customer(job.customer_id).filter(
        pk=machine.pk, status__in=_FOLLOWING
    ).update(status=status, updated_at=now)


# Statuses a job may move a machine out of (never out of Unprotected / Discovered / Paused:
# protection stopped or paused while the job ran keeps its status).
_FOLLOWING = (
    MachineStatus.PROTECTED,
    MachineStatus.INITIAL_SYNC,
    MachineStatus.IN_SYNC,
    MachineStatus.REPLICATING,
    MachineStatus.ERROR,
)


def job_start_for_agent(customer, agent, machine: Machine) -> ReplicationJob:
    """``acura-agent replicate`` on the machine: a job that is running from the start."""
    if machine.customer_id != customer.pk or machine.agent_id != agent.pk:
        raise JobError("No such machine for this agent.", code="not_found")
    _require_protected(machine)
    now = timezone.now()
    job = _create(
        customer,
        machine,
        agent=agent,
        trigger=JobTrigger.AGENT,
        state=JobState.RUNNING,
        started_at=now,
        last_progress_at=now,
    )
    _mark_started(job, now)
    return job


def job_take_next(customer, agent) -> ReplicationJob | None:
    """The oldest queued job for ``agent``, now running; None when there is none."""
    candidates = (
        ReplicationJob.objects.for_customer(customer)
        .filter(agent=agent, state=JobState.QUEUED)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)
    )
    for pk in candidates[:10]:
        now = timezone.now()
        taken = (
            ReplicationJob.objects.for_customer(customer)
            .filter(pk=pk, state=JobState.QUEUED)
            .update(state=JobState.RUNNING, started_at=now, last_progress_at=now)
        )
        if taken:  # else another poll of the same agent took it first
            job = ReplicationJob.objects.for_customer(customer).select_related("machine").get(pk=pk)
            _mark_started(job, now)
            return job
    return None


def _clean_counters(counters: dict) -> dict:
    values = {}
    for name in COUNTERS:
        if name not in counters or counters[name] is None:
            continue
        value = counters[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNTER:
            raise JobError(f"{name} must be a whole number of at least 0.", code="invalid")
        values[name] = value
    return values


def _not_running(job: ReplicationJob) -> JobError:
    job.refresh_from_db(fields=["state", "error_message"])
    why = f": {job.error_message}" if job.error_message else "."
    return JobError(
        f"Job {job.pk} is {job.get_state_display().lower()}{why}", code="not_running", job=job
    )


def job_progress(job: ReplicationJob, *, phase: str | None = None, **counters) -> ReplicationJob:
    """Record the agent's cumulative counters; ``phase == "committing"`` moves the job to
    *committing* (and any other phase back to *running*: a machine commits disk by disk)."""
    values = _clean_counters(counters)
    now = timezone.now()
    values["last_progress_at"] = now
    if phase is not None:
        values["phase"] = str(phase)[:64]
        values["state"] = JobState.COMMITTING if phase == COMMITTING_PHASE else JobState.RUNNING
    updated = (
        ReplicationJob.objects.for_customer(job.customer_id)
        .filter(pk=job.pk, state__in=(JobState.RUNNING, JobState.COMMITTING))
        .update(**values)
    )
    if not updated:
        raise _not_running(job)
    job.refresh_from_db()
    return job


def _finish(job: ReplicationJob, state: str, *, error: str = "", **values) -> bool:
    """Move an active job to a final state; False when it was not active any more."""
    now = timezone.now()
    updated = (
        ReplicationJob.objects.for_customer(job.customer_id)
        .filter(pk=job.pk, state__in=ACTIVE_JOB_STATES)
        .update(state=state, finished_at=now, error_message=error[:1000], **values)
    )
    if updated:
        job.refresh_from_db()
        _machine_after(job, now)
    return bool(updated)


def _machine_after(job: ReplicationJob, now) -> None:
    machine = Machine.objects.for_customer(job.customer_id).get(pk=job.machine_id)
    if machine.status not in _FOLLOWING:
        fields = {}
    elif job.state == JobState.SUCCEEDED:
        fields = {"status": MachineStatus.IN_SYNC, "status_message": ""}
    elif job.state == JobState.FAILED:
        fields = {"status": MachineStatus.ERROR, "status_message": job.error_message[:500]}
    else:  # cancelled: back to where the machine was before this job
        fields = {
            "status": MachineStatus.IN_SYNC
            if machine.last_replicated_at
            else MachineStatus.PROTECTED,
            "status_message": "",
        }
    if job.state == JobState.SUCCEEDED:
        taken = job.snapshots.order_by("created_at").values_list("created_at", flat=True).first()
        fields["last_replicated_at"] = taken or job.started_at or now
    if fields:
        Machine.objects.for_customer(job.customer_id).filter(pk=machine.pk).update(
            updated_at=now, **fields
        )


def job_finish(
    job: ReplicationJob,
    *,
    succeeded: bool,
    error: str = "",
    snapshot_ids: Iterable = (),
    **counters,
) -> ReplicationJob:
    """The agent's result. Idempotent: repeating the same result answers the same job."""
    values = _clean_counters(counters)
    state = JobState.SUCCEEDED if succeeded else JobState.FAILED
    if succeeded:
        wanted = {str(s) for s in snapshot_ids}
        have = {str(s) for s in job.snapshots.values_list("id", flat=True)}
        if not wanted:
            raise JobError("A successful job names the snapshots it committed.", code="invalid")
        if not wanted <= have:
            missing = ", ".join(sorted(wanted - have))
            raise JobError(
                f"Snapshots {missing} were not committed by job {job.pk}.", code="invalid"
            )
    elif not error.strip():
        raise JobError("A failed job needs an error message.", code="invalid")
    if _finish(job, state, error="" if succeeded else error.strip(), **values):
        return job
    job.refresh_from_db()
    if job.state == state:  # the same result again: answer it again
        return job
    raise _not_running(job)


def job_fail(job: ReplicationJob, error: str) -> bool:
    """Fail an active job from the server side (stuck, agent removed); False if it ended."""
    return _finish(job, JobState.FAILED, error=error)


def job_cancel(customer, job: ReplicationJob) -> ReplicationJob:
    """*Cancel*: a queued job ends at once; a running one too, and its agent learns it from
    its next progress call (409) or heartbeat and abandons the upload. A committing job is
    moments from its snapshot: it is not interrupted."""
    if job.customer_id != customer.pk:
        raise JobError("No such job.", code="not_found")
    if job.state == JobState.COMMITTING:
        raise JobError(
            f"Job {job.pk} is committing its snapshot and can no longer be cancelled.",
            code="not_running",
            job=job,
        )
    if not _finish(job, JobState.CANCELLED, cancel_requested=True):
        raise _not_running(job)
    return job


def jobs_cancel_for_machines(customer, machine_ids: Iterable[int]) -> int:
    """Stop Protection ends the machines' active jobs (their agents abandon them)."""
    count = 0
    jobs = ReplicationJob.objects.for_customer(customer).filter(
        machine_id__in=list(machine_ids), state__in=(JobState.QUEUED, JobState.RUNNING)
    )
    for job in jobs:
        count += _finish(job, JobState.CANCELLED, cancel_requested=True)
    return count


def jobs_to_cancel(customer, agent) -> list[int]:
    """Recently cancelled jobs of ``agent`` that it may still be working on."""
    since = timezone.now() - CANCEL_NOTICE
    return list(
        ReplicationJob.objects.for_customer(customer)
        .filter(
            agent=agent,
            state=JobState.CANCELLED,
            cancel_requested=True,
            started_at__isnull=False,
            finished_at__gte=since,
        )
        .values_list("pk", flat=True)
    )


def jobs_fail_stuck(now, timeout: timedelta) -> int:
    """Fail running jobs without progress for ``timeout`` (beat; every customer)."""
    cutoff = now - timeout
    stuck = ReplicationJob.objects.all_customers().filter(
        state__in=(JobState.RUNNING, JobState.COMMITTING), last_progress_at__lt=cutoff
    )
    minutes = int(timeout.total_seconds() // 60)
    message = f"No progress from the agent for {minutes} minutes; the job was failed."
    return sum(job_fail(job, message) for job in stuck)
