"""Agent housekeeping for beat: missed heartbeats mark agents offline; old events go."""

from datetime import timedelta

from django.utils import timezone

from clouds.models import Agent, AgentEvent, AgentStatus
from clouds.services.agents import agent_heartbeat
from clouds.services.housekeeping import agent_events_delete_old, agents_mark_offline
from clouds.tasks import delete_old_agent_events, mark_agents_offline


def make_agent(customer, status=AgentStatus.ONLINE, seen_ago=timedelta(0)):
    seen = None if seen_ago is None else timezone.now() - seen_ago
    return Agent.objects.create(
        customer=customer, platform="linux", status=status, last_seen_at=seen
    )


def status_of(agent) -> str:
    return Agent.objects.for_customer(agent.customer_id).get(pk=agent.pk).status


def test_agents_without_heartbeats_go_offline(customer, other_customer, settings):
    settings.AGENT_OFFLINE_AFTER_SECONDS = 90
    silent = make_agent(customer, seen_ago=timedelta(seconds=91))
    foreign_silent = make_agent(other_customer, seen_ago=timedelta(minutes=10))
    never_seen = make_agent(customer, seen_ago=None)
    alive = make_agent(customer, seen_ago=timedelta(seconds=80))
    pending = make_agent(customer, AgentStatus.PENDING, seen_ago=None)
    assert mark_agents_offline.apply().get() == {"marked_offline": 3}
    for agent in (silent, foreign_silent, never_seen):
        row = Agent.objects.for_customer(agent.customer_id).get(pk=agent.pk)
        assert row.status == AgentStatus.OFFLINE
        assert row.status_message == "No heartbeat for more than 90 seconds."
    assert status_of(alive) == AgentStatus.ONLINE
    assert status_of(pending) == AgentStatus.PENDING  # enrolled, never sent a heartbeat yet
    assert agents_mark_offline() == 0  # idempotent


def test_the_next_heartbeat_brings_an_agent_back(customer):
    agent = make_agent(customer, seen_ago=timedelta(hours=1))
    assert agents_mark_offline() == 1
    agent_heartbeat(agent, version="1.0", hostname="host")
    row = Agent.objects.for_customer(customer).get(pk=agent.pk)
    assert (row.status, row.status_message) == (AgentStatus.ONLINE, "")
    assert agents_mark_offline() == 0


def test_a_heartbeat_after_the_cutoff_wins(customer):
    """The UPDATE re-checks last_seen_at, so an agent seen after the cutoff stays online."""
    agent = make_agent(customer, seen_ago=timedelta(seconds=30))
    assert agents_mark_offline(now=timezone.now(), after_seconds=60) == 0
    assert agents_mark_offline(now=timezone.now() + timedelta(seconds=31), after_seconds=60) == 1
    assert status_of(agent) == AgentStatus.OFFLINE


def test_old_events_are_deleted_in_batches(customer, other_customer, settings, monkeypatch):
    settings.AGENT_EVENTS_KEEP_DAYS = 30
    monkeypatch.setattr("clouds.services.housekeeping.DELETE_BATCH", 3)
    now = timezone.now()
    mine, theirs = make_agent(customer), make_agent(other_customer)

    def event(agent, age):
        return AgentEvent.objects.create(
            customer=agent.customer,
            agent=agent,
            message="hello",
            occurred_at=now - age,
            received_at=now - age,
        )

    old = [event(mine, timedelta(days=31)) for _ in range(5)]
    old.append(event(theirs, timedelta(days=40)))
    kept = [event(mine, timedelta(days=29)), event(theirs, timedelta(days=1))]
    assert delete_old_agent_events.apply().get() == {"deleted": 6}
    left = set(AgentEvent.objects.all_customers().values_list("pk", flat=True))
    assert left == {e.pk for e in kept}
    assert agent_events_delete_old(keep_days=2) == 1  # the explicit argument wins
    assert agent_events_delete_old() == 0
