"""``create_download_link --customer SLUG --platform {linux,windows,vmware,ovirt} [--group NAME]
[--distro {debian,rhel}] [--driver {prebuilt,dkms}] [--cloud NAME] [--expires-hours N]
[--agents N] [--server-url URL]``: a download link for an agent package.

The URL is printed as the last line (scripts take ``tail -n 1``); it is the only way to get
the package, and the customer's Download links page shows it again while it lives. Linux
needs both ``--distro`` and ``--driver`` (the wizard asks for both too: a package for the wrong
distribution or driver type does not install); VMware and oVirt need ``--cloud``. Any
invalid value is a ``CommandError`` (exit status 1) and nothing is created.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clouds.models import Cloud, DriverType, LinuxDistro
from clouds.services.downloads import download_link_create
from protection.models import MachineGroup, Platform
from tenants.commands import customer_from_option

OPTION_NAMES = {
    "expires_hours": "--expires-hours",
    "max_agents": "--agents",
    "server_url": "--server-url",
}


def _whole_number(option: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise CommandError(f"{option} must be a whole number, not {raw!r}.") from None


def _messages(exc: ValidationError) -> list[str]:
    if not hasattr(exc, "error_dict"):
        return exc.messages
    return [
        f"{OPTION_NAMES.get(field, '--' + field.replace('_', '-'))}: {message}"
        for field, messages in exc.message_dict.items()
        for message in messages
    ]


class Command(BaseCommand):
    help = (
        "Create a download link for a customer's agent package; prints the URL last. "
        "Linux needs --distro and --driver; VMware and oVirt need --cloud."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customer", required=True, help="The customer's slug.")
        # Not argparse choices: the errors name the valid values the way the service does.
        parser.add_argument(
            "--platform", required=True, help=f"One of {', '.join(Platform.values)}."
        )
        parser.add_argument("--group", help="Machine group the discovered machines go to.")
        parser.add_argument(
            "--distro",
            help=f"Linux only, required: {' or '.join(LinuxDistro.values)} "
            f"(Debian/Ubuntu .deb or CentOS/RHEL .rpm).",
        )
        parser.add_argument(
            "--driver",
            help=f"Linux only, required: {' or '.join(DriverType.values)} (snapshot driver "
            f"deployment type).",
        )
        parser.add_argument(
            "--cloud", help="VMware and oVirt only, required: the registered cloud's name."
        )
        parser.add_argument(
            "--expires-hours",
            help=f"Valid this long (default {settings.DOWNLOAD_LINK_HOURS}).",
        )
        parser.add_argument(
            "--agents",
            help=f"How many agents may enroll with the package "
            f"(default {settings.DOWNLOAD_LINK_AGENTS}).",
        )
        parser.add_argument(
            "--server-url",
            help="The portal URL the agent enrolls with (default ACURA_PUBLIC_URL, "
            f"now {settings.PUBLIC_URL}).",
        )

    def handle(self, *args, **options):
        target = customer_from_option(options["customer"])
        if not target.is_active:
            raise CommandError(
                f"Customer {target.slug!r} is inactive; its downloads would be refused."
            )
        platform = options["platform"]
        if platform not in Platform.values:
            raise CommandError(
                f"Unknown platform {platform!r}; one of {', '.join(Platform.values)}."
            )
        group = self._group(target, options["group"])
        cloud = self._cloud(target, options["cloud"])
        if platform == Platform.LINUX:
            missing = [name for name in ("distro", "driver") if not options[name]]
            if missing:
                raise CommandError(
                    "A Linux package needs "
                    + " and ".join(
                        f"--{name} {{{','.join(choices.values)}}}"
                        for name, choices in (("distro", LinuxDistro), ("driver", DriverType))
                        if name in missing
                    )
                    + "."
                )
        try:
            new = download_link_create(
                target,
                platform=platform,
                server_url=options["server_url"] or settings.PUBLIC_URL,
                group=group,
                cloud=cloud,
                distro=options["distro"] or "",
                driver=options["driver"] or "",
                network={"mode": "dhcp"} if platform == Platform.VMWARE else None,
                expires_hours=_whole_number("--expires-hours", options["expires_hours"]),
                max_agents=_whole_number("--agents", options["agents"]),
            )
        except ValidationError as exc:
            raise CommandError(" ".join(_messages(exc))) from None
        link = new.link
        details = [link.get_platform_display()]
        if link.distro:
            details.append(f"{link.get_distro_display()}, {link.get_driver_display()}")
        if cloud is not None:
            details.append(f"cloud {cloud.name}")
        if group is not None:
            details.append(f"group {group.name}")
        self.stdout.write(
            f"Created download link {link.prefix} for {target.slug} ({'; '.join(details)}; "
            f"up to {link.enrollment_token.max_uses} agent(s), expires "
            f"{link.expires_at:%Y-%m-%d %H:%M} UTC). Revoke it with `manage.py "
            f"revoke_download_link {link.prefix}`."
        )
        self.stdout.write(new.url)

    def _group(self, customer, name: str | None):
        if name is None:
            return None
        group = MachineGroup.objects.for_customer(customer).filter(name=name).first()
        if group is None:
            raise CommandError(f"Customer {customer.slug} has no machine group {name!r}.")
        return group

    def _cloud(self, customer, name: str | None):
        if name is None:
            return None
        cloud = Cloud.objects.for_customer(customer).filter(name__iexact=name.strip()).first()
        if cloud is None:
            known = list(Cloud.objects.for_customer(customer).values_list("name", flat=True))
            hint = f" Its clouds: {', '.join(known)}." if known else " It has no cloud yet."
            raise CommandError(f"Customer {customer.slug} has no cloud {name!r}.{hint}")
        return cloud
