"""``manage.py collect_garbage [--grace-hours N] [--customer SLUG]``: free unreferenced
chunks; prints a line per step summary and the JSON summary as its last line."""

import json

from django.core.management.base import BaseCommand, CommandError

from storage.services.gc import collect_garbage
from tenants.commands import customer_from_option


class Command(BaseCommand):
    help = "Delete chunks and index files no snapshot references (mark and sweep)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--grace-hours",
            type=float,
            default=None,
            help="Keep unreferenced chunks younger than this (default: ACURA_GC_GRACE_HOURS).",
        )
        parser.add_argument("--customer", help="Only this customer's store (slug).")

    def handle(self, *args, grace_hours=None, customer=None, **options):
        if grace_hours is not None and grace_hours < 0:
            raise CommandError("--grace-hours must be 0 or more.")
        target = customer_from_option(customer)
        summary = collect_garbage(grace_hours=grace_hours, customer=target)
        self.stdout.write(
            f"Collected {summary['customers']} store(s): {summary['swept_chunks']} chunks, "
            f"{summary['freed_bytes']} bytes freed in {summary['duration_seconds']} s."
        )
        self.stdout.write(json.dumps(summary, sort_keys=True))
        if summary["errors"]:
            raise CommandError("Garbage collection had errors: " + "; ".join(summary["errors"]))
