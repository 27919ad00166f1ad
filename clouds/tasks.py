"""Celery tasks of the clouds app: agent housekeeping. Thin: call a service, log counts."""

import logging

from celery import shared_task

from .housekeeping import agent_events_delete_old, agents_mark_offline

logger = logging.getLogger(__name__)


@shared_task(name="clouds.tasks.mark_agents_offline")
def mark_agents_offline() -> dict:
    """Agents that missed their heartbeats go offline (every customer)."""
    summary = {"marked_offline": agents_mark_offline()}
    if summary["marked_offline"]:
        logger.info("agents marked offline: %(marked_offline)d", summary)
    return summary


@shared_task(name="clouds.tasks.delete_old_agent_events")
def delete_old_agent_events(keep_days: int | None = None) -> dict:
    """Delete agent events older than AGENT_EVENTS_KEEP_DAYS (or ``keep_days``)."""
    summary = {"deleted": agent_events_delete_old(keep_days=keep_days)}
    logger.info("old agent events deleted: %(deleted)d", summary)
    return summary


@shared_task(name="clouds.tasks.download_housekeeping")
def download_housekeeping() -> dict:
    """Drop cached packages of ended download links and forget stale wizard runs."""
    from .housekeeping import wizard_drafts_delete_stale
    from .services.downloads import download_links_cleanup

    summary = {
        "package_caches_dropped": download_links_cleanup(),
        "wizard_drafts_deleted": wizard_drafts_delete_stale(),
    }
    logger.info(
        "download housekeeping: %(package_caches_dropped)d package caches dropped, "
        "%(wizard_drafts_deleted)d stale wizard runs deleted",
        summary,
    )
    return summary
