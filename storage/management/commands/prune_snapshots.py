"""``manage.py prune_snapshots [--customer SLUG] [--dry-run]``: delete the snapshots the
effective keep rules no longer retain; a line per customer, the JSON summary as the last line."""

import json

from django.core.management.base import BaseCommand, CommandError

from storage.services.prune import prune_all
from tenants.commands import customer_from_option


class Command(BaseCommand):
    help = "Prune snapshots by the effective keep rules (PBS semantics, customer time zone)."

    def add_arguments(self, parser):
        parser.add_argument("--customer", help="Only this customer (slug).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would be removed; delete nothing."
        )

    def handle(self, *args, customer=None, dry_run=False, **options):
        customers = None
        if customer:
            target = customer_from_option(customer)
            customers = [target]

        def report(target, part):
            verb = "would remove" if dry_run else "removed"
            line = (
                f"{target.slug}: {part['disks']} disk(s), {part['kept']} kept, "
                f"{part['removed']} {verb}"
            )
            if part["errors"]:
                line += " — FAILED: " + "; ".join(part["errors"])
            self.stdout.write(line)

        summary = prune_all(dry_run=dry_run, customers=customers, report=report)
        self.stdout.write(json.dumps(summary, sort_keys=True))
        if summary["errors"]:
            raise CommandError("Prune reported errors: " + "; ".join(summary["errors"]))
