"""``manage.py verify_store [--customer SLUG] [--sample PERCENT]``: re-read, decode and
re-hash stored chunks. The JSON summary is the last line; exit status 1 when damage was
found (bad or missing chunks), so cron and monitoring notice."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from storage.services.verify import verify_store
from tenants.commands import customer_from_option


class Command(BaseCommand):
    help = "Verify stored chunks; quarantine damaged ones and mark their snapshots failed."

    def add_arguments(self, parser):
        parser.add_argument("--customer", help="Only this customer's store (slug).")
        parser.add_argument(
            "--sample",
            type=float,
            default=100.0,
            help="Percentage of chunks to check, chosen at random (default 100).",
        )

    def handle(self, *args, customer=None, sample=100.0, **options):
        if not 0 < sample <= 100:
            raise CommandError("--sample must be a percentage above 0 and at most 100.")
        target = customer_from_option(customer)
        summary = verify_store(customer=target, sample_percent=sample)
        self.stdout.write(
            f"Verified {summary['chunks_checked']} chunks of {summary['customers']} customer(s): "
            f"{len(summary['bad_chunks'])} bad, {len(summary['missing_chunks'])} missing, "
            f"{len(summary['affected_snapshots'])} snapshots affected."
        )
        self.stdout.write(json.dumps(summary, sort_keys=True))
        if summary["damaged"]:
            sys.exit(1)
