"""Reads of the Manage Clouds pages: the customer's clouds and what uses them.

Every function takes the customer first and reads only that customer's rows.
"""

from django.db.models import Count, Q, QuerySet

from protection.models import MachineGroup

from ..models import CLOUD_PLATFORMS, Agent, Cloud, DownloadLink
from .downloads import download_link_search

# What the cloud list shows of the last check's discovered inventory, in this order.
INVENTORY_COUNTS = [
    ("datacenters", "data center", "data centers"),
    ("clusters", "cluster", "clusters"),
    ("hosts", "host", "hosts"),
    ("vms", "VM", "VMs"),
]


def cloud_search(customer, *, q: str = "", platform: str = "") -> QuerySet[Cloud]:
    """The cloud list: each cloud with how many agents use it, filtered by platform and by
    search terms (every term must match the name or the endpoint)."""
    clouds = Cloud.objects.for_customer(customer).annotate(agent_count=Count("agents"))
    if platform in CLOUD_PLATFORMS:
        clouds = clouds.filter(platform=platform)
    for term in q.split():
        clouds = clouds.filter(Q(name__icontains=term) | Q(endpoint__icontains=term))
    return clouds.order_by("name", "pk")


def cloud_scope_counts(cloud: Cloud) -> list[str]:
    """ "1 data center", "3 hosts"…: what the last successful check discovered."""
    inventory = cloud.inventory if isinstance(cloud.inventory, dict) else {}
    shown = []
    for key, one, many in INVENTORY_COUNTS:
        value = inventory.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            shown.append(f"{value} {one if value == 1 else many}")
    scopes, total = inventory.get("scopes"), inventory.get("scopes_total")
    if isinstance(total, int) and total and isinstance(scopes, list) and scopes:
        kind = scopes[0].get("kind", "") if isinstance(scopes[0], dict) else ""
        level = {"datacenter": "data center"}.get(kind, kind)
        shown.append(f"{total} agent{'s' if total != 1 else ''} needed (one per {level})")
    return shown


def cloud_agents(customer, cloud: Cloud) -> QuerySet[Agent]:
    return Agent.objects.for_customer(customer).filter(cloud=cloud).order_by("pk")


def cloud_live_links(customer, cloud: Cloud) -> QuerySet[DownloadLink]:
    return download_link_search(customer, state="live").filter(enrollment_token__cloud=cloud)


def customer_groups(customer) -> QuerySet[MachineGroup]:
    """The groups a downloaded agent may put its machines in (the download form's choice)."""
    return MachineGroup.objects.for_customer(customer).order_by("name", "pk")
