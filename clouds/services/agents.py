"""What an enrolled agent does besides replicating: heartbeats and logs; and what the
portal does to an agent (debug logging, delete)."""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from protection.models import ACTIVE_JOB_STATES, JobState, ReplicationJob
from protection.services.jobs import JobError, job_progress, jobs_to_cancel

from ..models import Agent, AgentEvent, AgentStatus, EventLevel
from .enrollment import HOSTNAME_MAX, VERSION_MAX

MAX_EVENTS = 500
MESSAGE_MAX = 8000  # longer lines (a traceback) are cut, not refused: a log must not bounce
PHASE_MAX = 64


@dataclass(frozen=True)
class HeartbeatAnswer:
    agent: Agent
    cancel_jobs: list[int]
    # An appliance whose cloud's machines were never discovered for it (or whose VM just
    # changed): the caller queues the cloud's discovery (``clouds.tasks``).
    discovery_due: bool = False


VM_UUID_MAX = 64


def _agent_job(agent: Agent, job_id) -> ReplicationJob | None:
    """``agent``'s own job with this id (None for anything else, another agent's included)."""
    if isinstance(job_id, bool) or not isinstance(job_id, int) or not 0 < job_id < 2**63:
        return None
    return (
        ReplicationJob.objects.for_customer(agent.customer_id)
        .filter(pk=job_id, agent=agent)
        .first()
    )


def agent_heartbeat(
    agent: Agent, *, version: str, hostname: str, job=None, vm_uuid: str = ""
) -> HeartbeatAnswer:
    """The agent is alive: online, last seen now, its version and hostname as it says.

    ``job`` (``{id, bytes_done, bytes_total, phase}``) is the progress of the job the
    agent is running, applied like a progress call. A job that is not this agent's or not
    running any more is ignored here: the heartbeat is about liveness, and ``cancel_jobs``
    tells the agent which of its jobs to drop.
    """
    errors = {}
    if not isinstance(version, str) or len(version.strip()) > VERSION_MAX:
        errors["version"] = f"A string of at most {VERSION_MAX} characters."
    if not isinstance(hostname, str) or len(hostname.strip()) > HOSTNAME_MAX:
        errors["hostname"] = f"A string of at most {HOSTNAME_MAX} characters."
    if job is not None and not isinstance(job, dict):
        errors["job"] = "An object {id, bytes_done, bytes_total, phase}."
    if not isinstance(vm_uuid, str) or len(vm_uuid.strip()) > VM_UUID_MAX:
        errors["vm_uuid"] = f"A string of at most {VM_UUID_MAX} characters."
    if errors:
        raise ValidationError(errors, code="invalid")
    now = timezone.now()
    fields = {"status": AgentStatus.ONLINE, "last_seen_at": now, "status_message": ""}
    if version.strip():
        fields["version"] = version.strip()
    if hostname.strip():
        fields["hostname"] = hostname.strip()
    vm_changed = bool(vm_uuid.strip()) and vm_uuid.strip().lower() != agent.vm_uuid
    if vm_changed:
        fields["vm_uuid"] = vm_uuid.strip().lower()
    Agent.objects.for_customer(agent.customer_id).filter(pk=agent.pk).update(**fields)
    agent.refresh_from_db()
    running = _agent_job(agent, job.get("id")) if job else None
    if running is not None and running.state in (JobState.RUNNING, JobState.COMMITTING):
        counters = {k: job.get(k) for k in ("bytes_done", "bytes_total") if k in job}
        phase = job.get("phase")
        try:
            job_progress(running, phase=str(phase)[:PHASE_MAX] if phase else None, **counters)
        except JobError as exc:
            if exc.code != "not_running":  # bad counters are the agent's mistake: say so
                raise ValidationError({"job": exc.message}, code=exc.code) from None
    appliance = agent.cloud_id is not None
    due = appliance and (agent.discovered_at is None or vm_changed)
    return HeartbeatAnswer(agent, jobs_to_cancel(agent.customer, agent), discovery_due=due)


def agent_set_debug_logging(agent: Agent, enabled: bool) -> Agent:
    """Switch debug-level logs on or off; the agent learns it from its next heartbeat."""
    Agent.objects.for_customer(agent.customer_id).filter(pk=agent.pk).update(
        debug_logging=bool(enabled)
    )
    agent.refresh_from_db()
    return agent


def agent_delete(agent: Agent) -> None:
    """Remove an agent, its credentials and its events. Refused while one of its jobs is
    active (cancel it first): the agent would upload into a job nobody owns. Its machines
    and finished jobs stay (their snapshots remain restorable); they just lose the agent."""
    with transaction.atomic():
        locked = Agent.objects.for_customer(agent.customer_id).select_for_update().get(pk=agent.pk)
        active = (
            ReplicationJob.objects.for_customer(agent.customer_id)
            .filter(agent=locked, state__in=ACTIVE_JOB_STATES)
            .values_list("pk", flat=True)
            .first()
        )
        if active is not None:
            raise ValidationError(
                f"Agent {agent.display_id} is running job {active}; cancel the job first.",
                code="agent_busy",
            )
        locked.delete()


def _occurred_at(value, where: str, errors: dict):
    if isinstance(value, str):
        value = parse_datetime(value.strip()) if len(value) <= 64 else None
    if not isinstance(value, datetime):
        errors[where] = "An ISO 8601 date and time is required."
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.utc)
    return value


def agent_events_record(agent: Agent, events: list) -> int:
    """Store log lines and events the agent sent; all or none. Returns how many."""
    if not isinstance(events, list):
        raise ValidationError({"events": "A list of events."}, code="invalid")
    if len(events) > MAX_EVENTS:
        raise ValidationError(
            {"events": f"At most {MAX_EVENTS} events per call; {len(events)} were sent."},
            code="too_many",
        )
    errors: dict[str, str] = {}
    job_ids = set()
    for event in events:
        if isinstance(event, dict) and event.get("job") is not None:
            job_ids.add(event["job"])
    valid_jobs = set(
        ReplicationJob.objects.for_customer(agent.customer_id)
        .filter(agent=agent, pk__in=[j for j in job_ids if _is_id(j)])
        .values_list("pk", flat=True)
    )
    rows = []
    now = timezone.now()
    for i, event in enumerate(events):
        where = f"events[{i}]"
        if not isinstance(event, dict):
            errors[where] = "An object {level, message, occurred_at, job?}."
            continue
        level = event.get("level", EventLevel.INFO)
        if level not in EventLevel.values:
            errors[f"{where}.level"] = f"One of {', '.join(EventLevel.values)}."
        message = event.get("message")
        if not isinstance(message, str) or not message.strip():
            errors[f"{where}.message"] = "A non-empty string."
            message = ""
        elif len(message) > MESSAGE_MAX:
            message = message[: MESSAGE_MAX - 1] + "…"
        occurred_at = _occurred_at(event.get("occurred_at"), f"{where}.occurred_at", errors)
        job = event.get("job")
        if job is not None and job not in valid_jobs:
            errors[f"{where}.job"] = f"No job {job} of this agent."
        rows.append(
            AgentEvent(
                customer_id=agent.customer_id,
                agent=agent,
                job_id=job,
                level=level,
                message=message,
                occurred_at=occurred_at,
                received_at=now,
            )
        )
    if errors:
        raise ValidationError(errors, code="invalid")
    AgentEvent.objects.bulk_create(rows)
    return len(rows)


def _is_id(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and 0 < value < 2**63
