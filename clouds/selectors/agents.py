"""Reads of the clouds app: the agent pages and the dashboard's agent figures."""

from django.db.models import Count, Q, QuerySet

from protection.models import ACTIVE_JOB_STATES, Machine, ReplicationJob

from ..models import Agent, AgentCredential, AgentEvent, AgentStatus, EventLevel

# Event levels from the least to the most severe: a level filter shows that level and up.
LEVELS = [EventLevel.DEBUG, EventLevel.INFO, EventLevel.WARNING, EventLevel.ERROR]


def agents_of(customer) -> QuerySet[Agent]:
    return Agent.objects.for_customer(customer).select_related("group", "cloud")


def agent_search(customer, *, q: str = "", status: str = "") -> QuerySet[Agent]:
    """The agent list: each agent with how many machines it reports, filtered by status and
    by search terms (hostname, version, group, or the agent's number)."""
    agents = agents_of(customer).annotate(machine_count=Count("machines"))
    if status:
        agents = agents.filter(status=status)
    for term in q.split():
        match = (
            Q(hostname__icontains=term)
            | Q(version__icontains=term)
            | Q(group__name__icontains=term)
            | Q(cloud__name__icontains=term)
        )
        if term.isdigit() and len(term) < 19:
            match |= Q(pk=int(term))
        agents = agents.filter(match)
    return agents.order_by("pk")


def agent_credentials(customer, agent: Agent) -> QuerySet[AgentCredential]:
    return (
        AgentCredential.objects.for_customer(customer)
        .filter(agent=agent)
        .order_by("-created_at", "-id")
    )


def agent_events(customer, agent: Agent, *, level: str = "") -> QuerySet[AgentEvent]:
    """The agent's events and log lines, newest first; ``level`` keeps that level and the
    more severe ones (``warning`` shows warnings and errors)."""
    events = AgentEvent.objects.for_customer(customer).filter(agent=agent)
    if level in LEVELS:
        events = events.filter(level__in=LEVELS[LEVELS.index(level) :])
    return events.order_by("-occurred_at", "-id")


def agent_machines(customer, agent: Agent) -> QuerySet[Machine]:
    return (
        Machine.objects.for_customer(customer)
        .filter(agent=agent)
        .select_related("group")
        .order_by("name", "id")
    )


def agent_active_jobs(customer, agent: Agent) -> list[ReplicationJob]:
    return list(
        ReplicationJob.objects.for_customer(customer)
        .filter(agent=agent, state__in=ACTIVE_JOB_STATES)
        .select_related("machine")
        .order_by("created_at", "id")
    )


def agent_summary(customer) -> dict:
    """Agents by status, for the dashboard."""
    counts = dict(
        Agent.objects.for_customer(customer)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {
        "total": sum(counts.values()),
        "online": counts.get(AgentStatus.ONLINE, 0),
        "offline": counts.get(AgentStatus.OFFLINE, 0),
        "pending": counts.get(AgentStatus.PENDING, 0),
    }
