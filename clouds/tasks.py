"""Celery tasks of the clouds app: agent housekeeping. Thin: call a service, log counts."""

import logging

from celery import shared_task

from .services.housekeeping import agent_events_delete_old, agents_mark_offline

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
    from .services.downloads import download_links_cleanup
    from .services.housekeeping import wizard_drafts_delete_stale

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


@shared_task(name="clouds.tasks.discover_cloud_machines")
def discover_cloud_machines(cloud_id: int | None = None) -> dict:
    """Report the machines of a cloud's (or, without ``cloud_id``, every cloud's) appliance
    agents, discovered through the cloud's connector."""
    from .models import Cloud
    from .services.cloud_machines import cloud_machines_sync

    clouds = Cloud.objects.all_customers().filter(agents__isnull=False).distinct()
    if cloud_id is not None:
        clouds = clouds.filter(pk=cloud_id)
    summary = {"clouds": 0, "failed": 0, "machines": 0}
    for cloud in clouds:
        result = cloud_machines_sync(cloud)
        summary["clouds"] += 1
        summary["failed"] += 0 if result.ok else 1
        summary["machines"] += result.machines
        if not result.ok:
            logger.warning("discovery of cloud %s failed: %s", cloud.pk, result.message)
    logger.info(
        "cloud discovery: %(clouds)d clouds, %(machines)d machines, %(failed)d failed", summary
    )
    return summary


def queue_cloud_discovery(cloud_id: int) -> None:
    """Ask a worker to discover one cloud once the current transaction commits. A lost or
    unsendable message costs only time: beat runs the same discovery every few minutes."""
    from django.db import transaction

    def send():
        try:
            discover_cloud_machines.delay(cloud_id)
        except Exception as exc:  # the broker is down: the periodic run catches up
            logger.warning("could not queue the discovery of cloud %s: %s", cloud_id, exc)

    transaction.on_commit(send)
