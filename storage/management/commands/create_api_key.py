"""``manage.py create_api_key --customer SLUG --name NAME``: an interim agent credential.

The token is printed once, as the last line (scripts take ``tail -n 1``); only a hash of it is
kept. The agents release replaces these keys with enrolled agent credentials.
"""

from django.core.management.base import BaseCommand, CommandError

from storage.auth import api_key_create
from tenants.commands import customer_from_option


class Command(BaseCommand):
    help = "Create an API key for a customer's replication agent; prints the token last."

    def add_arguments(self, parser):
        parser.add_argument("--customer", required=True, help="The customer's slug.")
        parser.add_argument("--name", required=True, help="What the key is for (e.g. a host).")

    def handle(self, *args, customer, name, **options):
        name = name.strip()
        if not name:
            raise CommandError("--name must not be empty.")
        if len(name) > 100:
            raise CommandError("--name must be at most 100 characters.")
        target = customer_from_option(customer)
        if not target.is_active:
            raise CommandError(f"Customer {customer!r} is inactive; its keys would be refused.")
        key, token = api_key_create(target, name)
        self.stdout.write(
            f"Created API key {key.prefix} ({name}) for {target.slug}. The token is shown "
            "only now; revoke it with `manage.py revoke_api_key "
            f"{key.prefix}`."
        )
        self.stdout.write(token)
