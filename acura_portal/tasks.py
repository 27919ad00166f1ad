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
