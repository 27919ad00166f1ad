"""Reads about customers and memberships."""

from django.db.models import QuerySet

from .models import Customer, Membership


def memberships_of(user) -> QuerySet[Membership]:
    """The active customers a user may open, with their role, in display order."""
    if not user.is_authenticated:
        return Membership.objects.none()
    return (
        Membership.objects.filter(user=user, customer__is_active=True)
        .select_related("customer")
        .order_by("customer__name")
    )


def membership_for(user, customer_slug: str) -> Membership | None:
    """The user's membership in the customer with this slug, or None.

    None covers both "no such customer" and "not a member": callers answer 404 either way,
    so nobody learns which customers exist.
    """
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(user=user, customer__slug=customer_slug, customer__is_active=True)
        .select_related("customer")
        .first()
    )


def customer_members(customer: Customer) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(customer=customer)
        .select_related("user")
        .order_by("user__username")
    )


def admin_count(customer: Customer) -> int:
    return Membership.objects.filter(customer=customer, role="admin").count()
