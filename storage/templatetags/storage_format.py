"""Display helpers of the storage pages, and the machine page's storage figures.

``machine_storage`` lets ``protection/machine_detail.html`` show the machine's snapshots
and usage without the protection app importing storage (storage stands on protection, not
the other way round).
"""

from django import template

from storage.selectors import latest_change_point, machine_usage

register = template.Library()


@register.filter
def ratio(value) -> str:
    """A dedup ratio as ``3.2×``; ``—`` when there is none (nothing stored)."""
    if value is None or value == "":
        return "—"
    value = float(value)
    return f"{value:,.1f}×" if value < 100 else f"{value:,.0f}×"


@register.simple_tag(takes_context=True)
def machine_change_point(context, machine):
    """``latest_change_point`` of ``machine`` in the page's customer."""
    return latest_change_point(context["request"].customer, machine)


@register.simple_tag(takes_context=True)
def machine_storage(context, machine) -> dict:
    """``machine_usage`` of ``machine`` in the page's customer (``request.customer``)."""
    return machine_usage(context["request"].customer, machine)
