"""Helpers shared by management commands of every app."""

from django.core.management.base import CommandError

from .models import Customer


def customer_from_option(slug: str | None) -> Customer | None:
    """The customer a ``--customer SLUG`` option names (None without the option); a clear
    CommandError (exit status 1) for an unknown slug."""
    if not slug:
        return None
    customer = Customer.objects.filter(slug=slug).first()
    if customer is None:
        raise CommandError(f"No customer with the slug {slug!r}.")
    return customer
