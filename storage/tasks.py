"""Celery tasks of the storage app. Tasks stay thin: they call a service and return its
JSON-able summary (the periodic schedules live in ``acura_portal.periodic``)."""

from celery import shared_task

from storage.services.prune import prune_all


@shared_task(name="storage.tasks.prune_snapshots")
def prune_snapshots(dry_run: bool = False) -> dict:
    """Prune every active customer by its effective keep rules (idempotent)."""
    return prune_all(dry_run=dry_run)
