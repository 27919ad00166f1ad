"""``manage.py rewrap_data_keys``: re-wrap every customer data key with the current master.

Master key rotation: set ``ACURA_MASTER_KEYS="NEW,OLD"``, run this command, then drop OLD.
Only the small wrapped data keys in the database change; the stored blobs stay as they are
(they are encrypted with the data keys, which do not change). Safe to re-run: keys already
wrapped by the current master are left alone. The JSON summary is the last line; the command
fails when a key cannot be unwrapped (its master is not configured).
"""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from storage.models import CustomerStore
from storage.store.errors import BlobKeyError, KeyConfigError
from storage.store.keys import Keyring, load_keyring


def rewrap_data_keys(ring: Keyring) -> dict:
    """Re-wrap the data keys not wrapped by ``ring``'s current master, one row lock each."""
    summary = {"stores": 0, "rewrapped": 0, "unencrypted": 0, "failed": []}
    for pk in CustomerStore.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            store = CustomerStore.objects.select_for_update().select_related("customer").get(pk=pk)
            if not store.wrapped_data_key:
                summary["unencrypted"] += 1
                continue
            summary["stores"] += 1
            wrapped = bytes(store.wrapped_data_key)
            if not ring.needs_rewrap(wrapped):
                continue
            try:
                store.wrapped_data_key = ring.rewrap(wrapped, store.namespace)
            except BlobKeyError as exc:
                summary["failed"].append(f"{store.customer.slug}: {exc}")
                continue
            store.save(update_fields=["wrapped_data_key"])
            summary["rewrapped"] += 1
    return summary


class Command(BaseCommand):
    help = "Re-wrap customer data keys with the current (first) ACURA_MASTER_KEYS entry."

    def handle(self, *args, **options):
        try:
            ring = load_keyring(settings.STORE_MASTER_KEYS)
        except KeyConfigError as exc:
            raise CommandError(f"ACURA_MASTER_KEYS is malformed: {exc}.") from None
        if ring is None:
            raise CommandError(
                "ACURA_MASTER_KEYS is not set: put the new master key first and the old one(s) "
                "after it, e.g. ACURA_MASTER_KEYS=NEW,OLD."
            )
        summary = rewrap_data_keys(ring)
        self.stdout.write(
            f"Re-wrapped {summary['rewrapped']} of {summary['stores']} encrypted store key(s) "
            f"with master {ring.current_id.hex()}."
        )
        self.stdout.write(json.dumps(summary, sort_keys=True))
        if summary["failed"]:
            raise CommandError(
                "Some data keys could not be unwrapped (is their master key configured?): "
                + "; ".join(summary["failed"])
            )
