"""Celery tasks of the storage app. Tasks stay thin: they call a service and return its
JSON-able summary (the periodic schedules live in ``acura_portal.periodic``)."""

from celery import shared_task

from storage.services.prune import prune_all


@shared_task(name="storage.tasks.prune_snapshots")
def prune_snapshots(dry_run: bool = False) -> dict:
    """Prune every active customer by its effective keep rules (idempotent)."""
    return prune_all(dry_run=dry_run)


@shared_task(name="storage.tasks.collect_garbage")
def collect_garbage() -> dict:
    """Mark and sweep every customer's store; safe beside uploads and other collections."""
    from storage.services.gc import collect_garbage as run

    return run()


@shared_task(name="storage.tasks.verify_store")
def verify_store(sample_percent: float = 100.0) -> dict:
    """Re-read and re-hash stored chunks; quarantine damage, mark affected snapshots."""
    from storage.services.verify import verify_store as run

    return run(sample_percent=sample_percent)
