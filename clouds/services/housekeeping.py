"""Agent housekeeping for beat: agents that stopped sending heartbeats go offline, and old
agent events are deleted. Both are conditional writes, safe to repeat and to run beside
heartbeats (a heartbeat that lands first keeps its agent online)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..models import Agent, AgentEvent, AgentStatus

DELETE_BATCH = 5000


def agents_mark_offline(now: datetime | None = None, after_seconds: int | None = None) -> int:
    """Online agents without a heartbeat for ``after_seconds`` (AGENT_OFFLINE_AFTER_SECONDS)
    become offline; the dispatcher queues nothing for them. Returns how many."""
    now = now or timezone.now()
    seconds = settings.AGENT_OFFLINE_AFTER_SECONDS if after_seconds is None else after_seconds
    cutoff = now - timedelta(seconds=seconds)
    return (
        Agent.objects.all_customers()
        .filter(Q(last_seen_at__lt=cutoff) | Q(last_seen_at__isnull=True))
        .filter(status=AgentStatus.ONLINE)
        .update(
            status=AgentStatus.OFFLINE,
            status_message=f"No heartbeat for more than {seconds} seconds.",
        )
    )


def agent_events_delete_old(now: datetime | None = None, keep_days: int | None = None) -> int:
    """Delete agent events received more than ``keep_days`` (AGENT_EVENTS_KEEP_DAYS) ago,
    in batches so a first run after a long time holds no long lock. Returns how many."""
    now = now or timezone.now()
    days = settings.AGENT_EVENTS_KEEP_DAYS if keep_days is None else keep_days
    old = AgentEvent.objects.all_customers().filter(received_at__lt=now - timedelta(days=days))
    deleted = 0
    while True:
        batch = list(old.values_list("pk", flat=True)[:DELETE_BATCH])
        if not batch:
            return deleted
        count, _ = AgentEvent.objects.all_customers().filter(pk__in=batch).delete()
        deleted += count


WIZARD_DRAFT_KEEP_DAYS = 30


def wizard_drafts_delete_stale(
    now: datetime | None = None, keep_days: int = WIZARD_DRAFT_KEEP_DAYS
) -> int:
    """Unfinished wizard runs nobody touched for ``keep_days`` are forgotten (their clouds
    and groups stay; their links expire on their own). Returns how many."""
    from ..models import WizardDraft

    cutoff = (now or timezone.now()) - timedelta(days=keep_days)
    deleted, _ = (
        WizardDraft.objects.all_customers()
        .filter(finished_at__isnull=True, updated_at__lt=cutoff)
        .delete()
    )
    return deleted
