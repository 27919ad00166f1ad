"""``manage.py revoke_api_key PREFIX``: refuse an interim agent key from now on.

PREFIX is the 8-character prefix shown by ``create_api_key`` (the full ``ak_…`` token is
accepted too). Revoking twice is harmless.
"""

from django.core.management.base import BaseCommand, CommandError

from storage.auth import api_key_revoke
from storage.models import StorageApiKey


class Command(BaseCommand):
    help = "Revoke an agent API key by its prefix."

    def add_arguments(self, parser):
        parser.add_argument("prefix", help="The key's prefix (or the whole token).")

    def handle(self, *args, prefix, **options):
        prefix = prefix.strip()
        if prefix.startswith("ak_"):
            prefix = prefix[3:].partition(".")[0]
        if not prefix:
            raise CommandError("Give the key's prefix.")
        key = (
            StorageApiKey.objects.all_customers()  # operator command: keys of every customer
            .select_related("customer")
            .filter(prefix=prefix)
            .first()
        )
        if key is None:
            raise CommandError(f"No API key with the prefix {prefix!r}.")
        if api_key_revoke(key):
            self.stdout.write(f"Revoked API key {key.prefix} ({key.name}) of {key.customer.slug}.")
        else:
            self.stdout.write(
                f"API key {key.prefix} ({key.name}) of {key.customer.slug} was already revoked "
                f"at {key.revoked_at:%Y-%m-%d %H:%M} UTC."
            )
