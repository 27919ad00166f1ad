"""Reads about customers and memberships."""

from django.contrib.auth import get_user_model
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


def user_by_login(login: str):
    """The user whose username (or, failing that, email) is ``login``, or None.

    An email shared by several users matches none of them: the caller asks for the
    username instead of guessing.
    """
    login = (login or "").strip()
    if not login:
        return None
    User = get_user_model()
    user = (
        User.objects.filter(username=login).first()
        or User.objects.filter(username__iexact=login).first()
    )
    if user is not None:
        return user
    by_email = list(User.objects.filter(email__iexact=login)[:2])
    return by_email[0] if len(by_email) == 1 else None
