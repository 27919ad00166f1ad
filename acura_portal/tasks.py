"""Project-level Celery tasks (housekeeping). Tasks stay thin: they call a function."""

import logging
from pathlib import Path

from celery import shared_task
from django.core.management import call_command

logger = logging.getLogger(__name__)


@shared_task(name="acura_portal.tasks.clear_expired_sessions")
def clear_expired_sessions() -> None:
    call_command("clearsessions")
    logger.info("expired sessions cleared")


@shared_task(name="acura_portal.tasks.touch_file")
def touch_file(path: str) -> str:
    """Writes a marker file: lets operators (and tests) prove a worker consumes the queue."""
    Path(path).write_text("done\n")
    return path


@shared_task(name="acura_portal.tasks.reconcile_jobs")
def reconcile_jobs() -> dict:
    """The reconciler: job and machine repairs (protection), then the upload sessions of
    ended jobs (storage). It lives here because it wires both apps together."""
    from protection.services.reconcile import jobs_reconcile
    from storage.services.job_sessions import sessions_abort_for_ended_jobs

    summary = jobs_reconcile()
    summary["sessions_aborted"] = sessions_abort_for_ended_jobs()
    if summary["sessions_aborted"]:
        logger.warning("reconciler aborted %(sessions_aborted)d upload sessions", summary)
    return summary
