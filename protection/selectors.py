"""Reads of the protection app."""

from django.db.models import Count, Q, QuerySet

from .models import UNPROTECTED_STATUSES, Machine, MachineGroup, MachineStatus


def machines_of(customer) -> QuerySet[Machine]:
    return Machine.objects.for_customer(customer).select_related("group")


def groups_of(customer) -> QuerySet[MachineGroup]:
    return MachineGroup.objects.for_customer(customer).annotate(machine_count=Count("machines"))


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
