"""``create_enrollment_token --customer SLUG --platform P [--group NAME] [--cloud NAME]
[--expires-hours N] [--uses N]``: a token an agent enrolls with.

``--cloud`` names a registered VMware or oVirt cloud of the customer (Manage Clouds): the
agent enrolling with the token is that cloud's appliance and fetches its access settings
from ``GET /api/v1/agent/cloud/``.

The token is printed once, as the last line (scripts take ``tail -n 1``); only its hash is
kept. Any invalid value is a ``CommandError`` (exit status 1) and nothing is created.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clouds.models import Cloud
from clouds.services import enrollment_token_create
from protection.models import MachineGroup, Platform
from tenants.commands import customer_from_option


def _whole_number(option: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise CommandError(f"{option} must be a whole number, not {raw!r}.") from None


class Command(BaseCommand):
    help = "Create an enrollment token for a customer's agents; prints the token last."

    def add_arguments(self, parser):
        parser.add_argument("--customer", required=True, help="The customer's slug.")
        # Not argparse choices: the service's message names the valid platforms the same
        # way the other errors are reported.
        parser.add_argument(
            "--platform", required=True, help=f"One of {', '.join(Platform.values)}."
        )
        parser.add_argument("--group", help="Machine group the agent's machines go to.")
        parser.add_argument(
            "--cloud", help="Registered VMware/oVirt cloud (by name) the appliance serves."
        )
        parser.add_argument("--expires-hours", default="24", help="Valid this long (24).")
        parser.add_argument("--uses", default="1", help="How many agents may enroll (1).")

    def handle(self, *args, customer, platform, group, cloud, expires_hours, uses, **options):
        target = customer_from_option(customer)
        if not target.is_active:
            raise CommandError(f"Customer {customer!r} is inactive; its agents would be refused.")
        machine_group = None
        if group is not None:
            machine_group = MachineGroup.objects.for_customer(target).filter(name=group).first()
            if machine_group is None:
                raise CommandError(f"Customer {target.slug} has no machine group {group!r}.")
        registered = None
        if cloud is not None:
            registered = Cloud.objects.for_customer(target).filter(name__iexact=cloud).first()
            if registered is None:
                raise CommandError(f"Customer {target.slug} has no cloud {cloud!r}.")
        try:
            new = enrollment_token_create(
                target,
                platform=platform,
                group=machine_group,
                cloud=registered,
                expires_hours=_whole_number("--expires-hours", expires_hours),
                max_uses=_whole_number("--uses", uses),
            )
        except ValidationError as exc:
            raise CommandError(" ".join(_messages(exc))) from None
        token = new.token
        where = f", group {machine_group.name}" if machine_group else ""
        where += f", cloud {registered.name}" if registered else ""
        self.stdout.write(
            f"Created enrollment token {token.prefix} for {target.slug} ({token.platform}"
            f"{where}; {token.max_uses} use(s), expires {token.expires_at:%Y-%m-%d %H:%M} UTC). "
            f"It is shown only now; revoke it with `manage.py revoke_enrollment_token "
            f"{token.prefix}`."
        )
        self.stdout.write(new.text)


OPTION_NAMES = {"expires_hours": "--expires-hours", "max_uses": "--uses"}


def _messages(exc: ValidationError) -> list[str]:
    if not hasattr(exc, "error_dict"):
        return exc.messages
    return [
        f"{OPTION_NAMES.get(field, '--' + field)}: {message}"
        for field, messages in exc.message_dict.items()
        for message in messages
    ]
