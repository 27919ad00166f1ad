"""``create_customer SLUG --name NAME [--time-zone TZ] [--admin USER [--password P]] [--role R]``.

Creates a customer and, with ``--admin``, its first member (a new login unless the user
exists). A password that the command generated is printed once, on the confirmation line;
it is stored nowhere in readable form. Any invalid value is a ``CommandError`` (exit code 1)
and nothing is created.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.models import Role
from tenants.services import customer_create


def _describe(exc: ValidationError) -> str:
    """All problems on one line; password rules get the option name, since their
    messages ("This password is too short") do not say which value they mean."""
    if not hasattr(exc, "error_dict"):
        return " ".join(exc.messages)
    parts = []
    for field, messages in exc.message_dict.items():
        prefix = "--password: " if field == "password" else ""
        parts.extend(prefix + message for message in messages)
    return " ".join(parts)


class Command(BaseCommand):
    help = "Create a customer, optionally with its first user (admin by default)."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="URL name of the customer: lowercase letters, digits, -")
        parser.add_argument("--name", required=True, help="Display name of the customer")
        parser.add_argument("--time-zone", default="UTC", help="IANA time zone (default UTC)")
        parser.add_argument("--admin", metavar="USER", help="Username of the first member")
        parser.add_argument(
            "--password", help="Password of a new --admin user (default: generate one)"
        )
        parser.add_argument("--email", default="", help="Email of a new --admin user")
        # Not argparse choices: the service's message names the valid roles the same way
        # the other errors are reported.
        parser.add_argument(
            "--role", default=Role.ADMIN.value, help="admin, operator or viewer (default admin)"
        )

    def handle(self, *args, **options):
        try:
            created = customer_create(
                options["slug"],
                options["name"],
                time_zone=options["time_zone"],
                admin_username=options["admin"],
                password=options["password"],
                role=options["role"],
                email=options["email"],
            )
        except ValidationError as exc:
            raise CommandError(_describe(exc)) from exc
        customer = created.customer
        line = f"Created customer {customer.slug} ({customer.name}, {customer.time_zone})"
        if created.membership is not None:
            user = created.membership.user.get_username()
            role = created.membership.role
            if created.generated_password:
                line += f" with new user {user} as {role}; password: {created.generated_password}"
            elif created.user_created:
                line += f" with new user {user} as {role}"
            else:
                line += f" with existing user {user} as {role}"
        self.stdout.write(line)
