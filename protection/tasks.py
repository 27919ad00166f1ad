"""Celery tasks of the protection app. Thin: load, call a service, log its counts (the
periodic schedules live in ``acura_portal.periodic``)."""

import logging

from celery import shared_task

from tenants.models import Customer

from .services.dispatch import dispatch_due

logger = logging.getLogger(__name__)


@shared_task(name="protection.tasks.dispatch_replications")
def dispatch_replications(customer_id: int | None = None) -> dict:
    """Queue the replications the schedules say are due (every active customer, or one)."""
    customers = None
    if customer_id is not None:
        customers = Customer.objects.filter(pk=customer_id, is_active=True)
    summary = dispatch_due(customers=customers)
    log = logger.warning if summary["errors"] else logger.info
    log(
        "dispatch: %(queued)d queued, %(not_due)d not due, %(agent_offline)d agent offline, "
        "%(busy)d busy, %(conflicts)d conflicts over %(machines)d machines of %(customers)d "
        "customers; %(next_run_updated)d next runs updated; errors: %(errors)s",
        summary,
    )
    return summary
