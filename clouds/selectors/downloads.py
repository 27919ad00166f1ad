"""Reads of the Download links pages: the customer's links, their downloads and the agents
that enrolled with them.

Every function takes the customer first and reads only that customer's rows.
"""

from django.db.models import Case, CharField, QuerySet, Value, When
from django.utils import timezone

from ..models import Agent, DownloadEvent, DownloadLink

LINK_STATES = ("live", "expired", "revoked")


def download_link_search(customer, *, state: str = "") -> QuerySet[DownloadLink]:
    """The customer's download links, newest first, each annotated with ``state`` (live,
    expired or revoked); ``state`` keeps only the links in that state."""
    now = timezone.now()
    links = (
        DownloadLink.objects.for_customer(customer)
        .select_related("enrollment_token__group", "enrollment_token__cloud", "created_by")
        .annotate(
            state=Case(
                When(revoked_at__isnull=False, then=Value("revoked")),
                When(expires_at__lte=now, then=Value("expired")),
                default=Value("live"),
                output_field=CharField(),
            )
        )
    )
    if state in LINK_STATES:
        links = links.filter(state=state)
    return links.order_by("-created_at", "-pk")


def download_link_events(customer, link: DownloadLink) -> QuerySet[DownloadEvent]:
    return DownloadEvent.objects.for_customer(customer).filter(link=link).order_by("-at", "-pk")


def download_link_agents(customer, link: DownloadLink) -> QuerySet[Agent]:
    """The agents that enrolled with the link's enrollment token."""
    return (
        Agent.objects.for_customer(customer)
        .filter(enrolled_with_id=link.enrollment_token_id)
        .order_by("pk")
    )
