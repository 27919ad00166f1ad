"""The periodic tasks the portal needs, kept in django-celery-beat's database scheduler.

Each app declares its schedules here (one list, one mechanism); ``ensure_periodic_tasks``
runs after every ``migrate`` and creates the missing ones. It never overwrites a schedule
that exists, so a provider admin's edits in the Django admin (interval, enabled) survive
upgrades.
"""

import json
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction


@dataclass(frozen=True)
class PeriodicSpec:
    name: str
    task: str
    every_seconds: int
    description: str
    kwargs: dict | None = None
    # A message older than this is dropped by the worker: after an outage the next tick
    # does the work instead of a backlog of identical passes.
    expire_seconds: int | None = None


PERIODIC_TASKS: list[PeriodicSpec] = [
    PeriodicSpec(
        name="Housekeeping: clear expired sessions",
        task="acura_portal.tasks.clear_expired_sessions",
        every_seconds=6 * 3600,
        description="Deletes expired login sessions from the database.",
    ),
    PeriodicSpec(
        name="Storage: prune snapshots",
        task="storage.tasks.prune_snapshots",
        every_seconds=3600,
        description="Deletes snapshots the effective keep rules no longer retain (metadata "
        "only; garbage collection frees the space).",
    ),
    PeriodicSpec(
        name="Storage: collect garbage",
        task="storage.tasks.collect_garbage",
        every_seconds=24 * 3600,
        description="Frees chunks and index files no snapshot references any more (after the "
        "grace period, never newer than the oldest open upload).",
    ),
    PeriodicSpec(
        name="Storage: verify a sample",
        task="storage.tasks.verify_store",
        every_seconds=24 * 3600,
        description="Re-reads and re-hashes a random 5 % of the stored chunks every day "
        "(arguments: sample_percent); run verify_store for a full pass.",
        kwargs={"sample_percent": 5.0},
    ),
    PeriodicSpec(
        name="Jobs: dispatch due replications",
        task="protection.tasks.dispatch_replications",
        every_seconds=settings.DISPATCH_SECONDS,
        description="Queues a replication for every protected machine whose effective "
        "schedule is due (enabled, interval elapsed, inside its window, agent online, no "
        "active job) and refreshes every machine's next run.",
        expire_seconds=max(settings.DISPATCH_SECONDS, 30),
    ),
    PeriodicSpec(
        name="Jobs: reconcile",
        task="acura_portal.tasks.reconcile_jobs",
        every_seconds=60,
        description="Fails stuck jobs (no progress for JOB_STUCK_MINUTES) and queued jobs no "
        "agent took (JOB_QUEUE_TIMEOUT_HOURS), repairs machine statuses a crashed worker "
        "left, and aborts the open upload sessions of ended jobs.",
        expire_seconds=60,
    ),
    PeriodicSpec(
        name="Agents: mark offline",
        task="clouds.tasks.mark_agents_offline",
        every_seconds=30,
        description="Marks agents offline after AGENT_OFFLINE_AFTER_SECONDS without a "
        "heartbeat; the dispatcher queues nothing for offline agents.",
        expire_seconds=30,
    ),
    PeriodicSpec(
        name="Agents: delete old events",
        task="clouds.tasks.delete_old_agent_events",
        every_seconds=24 * 3600,
        description="Deletes agent events and logs older than AGENT_EVENTS_KEEP_DAYS.",
    ),
    PeriodicSpec(
        name="Clouds: discover machines",
        task="clouds.tasks.discover_cloud_machines",
        every_seconds=settings.CLOUD_DISCOVERY_SECONDS,
        description="Discovers the VMs of every cloud that has appliance agents (VMware, "
        "oVirt) through its connector and reports each appliance's machines into its group. "
        "A new appliance also triggers it at its first heartbeat.",
        expire_seconds=settings.CLOUD_DISCOVERY_SECONDS,
    ),
    PeriodicSpec(
        name="Downloads: housekeeping",
        task="clouds.tasks.download_housekeeping",
        every_seconds=3600,
        description="Deletes the cached agent packages of expired or revoked download links "
        "and forgets Register-new-platform runs untouched for 30 days.",
        expire_seconds=3600,
    ),
]


def ensure_periodic_tasks(using: str = "default") -> list[str]:
    """Create the periodic tasks that don't exist yet; returns the names created."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = []
    with transaction.atomic(using=using):
        for spec in PERIODIC_TASKS:
            if PeriodicTask.objects.using(using).filter(name=spec.name).exists():
                continue
            interval, _ = IntervalSchedule.objects.using(using).get_or_create(
                every=spec.every_seconds, period=IntervalSchedule.SECONDS
            )
            PeriodicTask.objects.using(using).create(
                name=spec.name,
                task=spec.task,
                interval=interval,
                description=spec.description,
                kwargs=json.dumps(spec.kwargs or {}),
                expire_seconds=spec.expire_seconds,
            )
            created.append(spec.name)
    return created
