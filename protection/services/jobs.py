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
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import (
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


# Why *Replicate now* skipped a machine, by the JobError code job_queue raised.
SKIP_REASONS = {
    "not_protected": "not protected",
    "conflict": "already replicating",
    "no_agent": "no agent reports it",
}


@dataclass
class ReplicateNow:
    """What a bulk *Replicate now* did: the jobs queued, and per reason how many machines it
    skipped (``SKIP_REASONS``)."""

    jobs: list[int] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def message(self) -> str:
        queued = len(self.jobs)
        text = f"Queued replication of {queued} machine{'s' if queued != 1 else ''}."
        if self.skipped:
            parts = [f"{n} {SKIP_REASONS[code]}" for code, n in sorted(self.skipped.items())]
            text += f" Skipped {', '.join(parts)}."
        return text


def machines_replicate_now(customer, machines: Iterable[Machine], *, requested_by=None):
    """*Replicate now* for a selection (the machine list, a group, the API): a manual job
    for each machine that can take one; the others are counted by reason, never an error."""
    result = ReplicateNow()
    for machine in machines:
        try:
            job = job_queue(customer, machine, trigger=JobTrigger.MANUAL, requested_by=requested_by)
        except JobError as exc:
            if exc.code not in SKIP_REASONS:
                raise
            result.skipped[exc.code] = result.skipped.get(exc.code, 0) + 1
        else:
            result.jobs.append(job.pk)
    return result


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


def _finish(
    job: ReplicationJob,
    state: str,
    *,
    error: str = "",
    from_states=ACTIVE_JOB_STATES,
    condition: Q | None = None,
    **values,
) -> bool:
    """Move a job in one of ``from_states`` (and matching ``condition``) to a final state;
    False when the row no longer matched: another writer ended or moved it first."""
    now = timezone.now()
    rows = ReplicationJob.objects.for_customer(job.customer_id).filter(
        pk=job.pk, state__in=from_states
    )
    if condition is not None:
        rows = rows.filter(condition)
    updated = rows.update(state=state, finished_at=now, error_message=error[:1000], **values)
    if updated:
        job.refresh_from_db()
        _machine_after(job, now)
    return bool(updated)


def machine_settled_status(customer, machine: Machine) -> tuple[str, str]:
    """(status, message) of a protected machine between jobs: the outcome of its last
    replication that succeeded or failed (a cancelled one changed nothing), *Protected*
    before the first. Used when a job is cancelled and by the reconciler."""
    finished = ReplicationJob.objects.for_customer(customer).filter(
        machine_id=machine.pk, state__in=(JobState.SUCCEEDED, JobState.FAILED)
    )
    last = finished.order_by("-created_at", "-id").values("state", "error_message").first()
    if last is None:
        status = MachineStatus.IN_SYNC if machine.last_replicated_at else MachineStatus.PROTECTED
        return status, ""
    if last["state"] == JobState.FAILED:
        return MachineStatus.ERROR, last["error_message"][:500]
    return MachineStatus.IN_SYNC, ""


def _machine_after(job: ReplicationJob, now) -> None:
    """The machine follows the job's end. The status UPDATE repeats the "still following
    jobs" condition: Stop Protection or Pause between our read and write must win."""
    machines = Machine.objects.for_customer(job.customer_id)
    if job.state == JobState.SUCCEEDED:
        taken = job.snapshots.order_by("created_at").values_list("created_at", flat=True).first()
        machines.filter(pk=job.machine_id).update(
            last_replicated_at=taken or job.started_at or now, updated_at=now
        )
        status, message = MachineStatus.IN_SYNC, ""
    elif job.state == JobState.FAILED:
        status, message = MachineStatus.ERROR, job.error_message[:500]
    else:  # cancelled: back to where the machine was before this job
        machine = machines.get(pk=job.machine_id)
        status, message = machine_settled_status(job.customer_id, machine)
    machines.filter(pk=job.machine_id, status__in=_FOLLOWING).update(
        status=status, status_message=message, updated_at=now
    )


MAX_WARNINGS = 20
MAX_WARNING_LENGTH = 1000


def _clean_warnings(warnings) -> list[str]:
    if isinstance(warnings, str) or not isinstance(warnings, list | tuple):
        raise JobError("warnings must be a list of messages.", code="invalid")
    if len(warnings) > MAX_WARNINGS:
        raise JobError(f"At most {MAX_WARNINGS} warnings per job.", code="invalid")
    cleaned = []
    for warning in warnings:
        if not isinstance(warning, str) or not warning.strip():
            raise JobError("Every warning must be a non-empty message.", code="invalid")
        if len(warning) > MAX_WARNING_LENGTH:
            raise JobError(f"A warning is at most {MAX_WARNING_LENGTH} characters.", code="invalid")
        cleaned.append(warning.strip())
    return cleaned


def job_finish(
    job: ReplicationJob,
    *,
    succeeded: bool,
    error: str = "",
    snapshot_ids: Iterable = (),
    warnings=(),
    change_tracking: bool | None = None,
    **counters,
) -> ReplicationJob:
    """The agent's result. Idempotent: repeating the same result answers the same job.

    ``warnings``: what went wrong without failing the job (a platform snapshot that could
    not be removed); ``change_tracking``: the machine's changed-block tracking state (VMware
    CBT) after the job, kept on the machine."""
    values = _clean_counters(counters)
    values["warnings"] = _clean_warnings(warnings)
    if change_tracking is not None and not isinstance(change_tracking, bool):
        raise JobError("change_tracking must be true or false.", code="invalid")
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
        if change_tracking is not None:
            Machine.objects.for_customer(job.customer_id).filter(pk=job.machine_id).update(
                change_tracking=change_tracking
            )
        return job
    job.refresh_from_db()
    if job.state == state:  # the same result again: answer it again
        return job
    raise _not_running(job)


def job_fail(job: ReplicationJob, error: str, *, from_states=ACTIVE_JOB_STATES) -> bool:
    """Fail a job from the server side (stuck, never taken, agent removed) if it is still
    in one of ``from_states``; False when it ended or moved on meanwhile."""
    return _finish(job, JobState.FAILED, error=error, from_states=from_states)


CANCELLABLE = (JobState.QUEUED, JobState.RUNNING)


def _committing_error(job: ReplicationJob) -> JobError:
    return JobError(
        f"Job {job.pk} is committing its snapshot and can no longer be cancelled.",
        code="not_running",
        job=job,
    )


def job_cancel(customer, job: ReplicationJob) -> ReplicationJob:
    """*Cancel*: a queued job ends at once; a running one too, and its agent learns it from
    its next progress call (409) or heartbeat and abandons the upload. A committing job is
    moments from its snapshot: it is not interrupted (checked in the UPDATE itself, so a
    job that began committing since ``job`` was read is not cancelled either)."""
    if job.customer_id != customer.pk:
        raise JobError("No such job.", code="not_found")
    if job.state == JobState.COMMITTING:
        raise _committing_error(job)
    if not _finish(job, JobState.CANCELLED, from_states=CANCELLABLE, cancel_requested=True):
        error = _not_running(job)
        raise _committing_error(job) if job.state == JobState.COMMITTING else error
    return job


def jobs_cancel_for_machines(customer, machine_ids: Iterable[int]) -> int:
    """Stop Protection ends the machines' active jobs (their agents abandon them)."""
    count = 0
    jobs = ReplicationJob.objects.for_customer(customer).filter(
        machine_id__in=list(machine_ids), state__in=CANCELLABLE
    )
    for job in jobs:
        count += _finish(job, JobState.CANCELLED, from_states=CANCELLABLE, cancel_requested=True)
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


def _no_progress_since(cutoff) -> Q:
    """No progress since ``cutoff``; a running job that never reported counts from its start."""
    return Q(last_progress_at__lt=cutoff) | Q(last_progress_at__isnull=True, started_at__lt=cutoff)


def jobs_fail_stuck(now, timeout: timedelta) -> int:
    """Fail running jobs without progress for ``timeout`` (beat; every customer).

    The no-progress condition is part of each job's UPDATE: progress that arrives between
    the search and the write keeps the job alive."""
    cutoff = now - timeout
    quiet = _no_progress_since(cutoff)
    stuck = (
        ReplicationJob.objects.all_customers()
        .filter(quiet, state__in=(JobState.RUNNING, JobState.COMMITTING))
        .order_by("id")
    )
    minutes = int(timeout.total_seconds() // 60)
    message = f"No progress from the agent for {minutes} minutes; the job was failed."
    return sum(_finish(job, JobState.FAILED, error=message, condition=quiet) for job in stuck)
