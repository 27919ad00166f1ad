"""Reads of the protection app."""

from django.db.models import Count, F, Q, QuerySet

from .models import UNPROTECTED_STATUSES, Machine, MachineGroup, MachineStatus

NO_GROUP = "none"

# Sort keys offered by the machine list → ORDER BY. Never-replicated machines sort last in
# both directions: "most recent first" should not open with a page of blanks.
MACHINE_SORTS = {
    "name": (F("name").asc(), "id"),
    "-name": (F("name").desc(), "-id"),
    "status": (F("status").asc(), F("name").asc(), "id"),
    "-status": (F("status").desc(), F("name").asc(), "id"),
    "last_replicated": (F("last_replicated_at").asc(nulls_last=True), F("name").asc(), "id"),
    "-last_replicated": (F("last_replicated_at").desc(nulls_last=True), F("name").asc(), "id"),
}


def machines_of(customer) -> QuerySet[Machine]:
    return Machine.objects.for_customer(customer).select_related("group")


def groups_of(customer) -> QuerySet[MachineGroup]:
    return MachineGroup.objects.for_customer(customer).annotate(machine_count=Count("machines"))


def machine_search(
    customer,
    *,
    group=None,
    status: str = "",
    platform: str = "",
    protection: str = "",
    q: str = "",
    sort: str = "name",
) -> QuerySet[Machine]:
    """The machine list with its filters applied.

    ``group`` is a ``MachineGroup``, ``NO_GROUP`` for ungrouped machines, or ``None`` for
    all. ``protection`` is ``"protected"`` or ``"unprotected"`` (the dashboard cards link
    with it). ``q`` matches name, OS, external id and IP addresses; the IP list is a JSON
    array searched as its text, which SQLite and PostgreSQL both support.
    """
    machines = machines_of(customer)
    if group == NO_GROUP:
        machines = machines.filter(group__isnull=True)
    elif group is not None:
        machines = machines.filter(group=group)
    if status:
        machines = machines.filter(status=status)
    if platform:
        machines = machines.filter(platform=platform)
    if protection == "protected":
        machines = machines.exclude(status__in=UNPROTECTED_STATUSES)
    elif protection == "unprotected":
        machines = machines.filter(status__in=UNPROTECTED_STATUSES)
    for term in q.split():
        machines = machines.filter(
            Q(name__icontains=term)
            | Q(os_name__icontains=term)
            | Q(external_id__icontains=term)
            | Q(ip_addresses__icontains=term)
        )
    return machines.order_by(*MACHINE_SORTS.get(sort, MACHINE_SORTS["name"]))


def dashboard_summary(customer) -> dict:
    """Counts for the dashboard cards: machines by status, groups, protection coverage."""
    machines = Machine.objects.for_customer(customer)
    by_status = dict(
        machines.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    total = sum(by_status.values())
    unprotected = sum(by_status.get(s, 0) for s in UNPROTECTED_STATUSES)
    return {
        "total": total,
        "protected": total - unprotected,
        "unprotected": unprotected,
        "errors": by_status.get(MachineStatus.ERROR, 0),
        "by_status": [
            (status, by_status.get(status.value, 0))
            for status in MachineStatus
            if by_status.get(status.value)
        ],
        "groups": MachineGroup.objects.for_customer(customer).count(),
        "recent_errors": list(
            machines.filter(Q(status=MachineStatus.ERROR)).order_by("-updated_at")[:5]
        ),
    }
