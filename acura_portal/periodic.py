"""The periodic tasks the portal needs, kept in django-celery-beat's database scheduler.

Each app declares its schedules here (one list, one mechanism); ``ensure_periodic_tasks``
runs after every ``migrate`` and creates the missing ones. It never overwrites a schedule
that exists, so a provider admin's edits in the Django admin (interval, enabled) survive
upgrades.
"""

from dataclasses import dataclass

from django.db import transaction


@dataclass(frozen=True)
class PeriodicSpec:
    name: str
    task: str
    every_seconds: int
    description: str


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
                name=spec.name, task=spec.task, interval=interval, description=spec.description
            )
            created.append(spec.name)
    return created
