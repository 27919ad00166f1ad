"""``revoke_download_link PREFIX-or-URL``: the link serves nothing more, and the enrollment
token inside its package enrolls no more agents.

Accepts the prefix that ``create_download_link`` printed, the ``acdl_…`` text, or the whole
URL. Agents already enrolled keep working. Revoking twice is harmless.
"""

import re

from django.core.management.base import BaseCommand, CommandError

from clouds.models import DownloadLink
from clouds.services.downloads import LINK_KIND, download_link_revoke

_IN_URL = re.compile(rf"/download/{LINK_KIND}_([^./]+)\.")


def link_prefix(value: str) -> str:
    """The prefix in a URL, an ``acdl_<prefix>.<secret>`` text or a bare prefix."""
    value = value.strip()
    found = _IN_URL.search(value)
    if found:
        return found.group(1)
    if value.startswith(f"{LINK_KIND}_"):
        return value[len(LINK_KIND) + 1 :].partition(".")[0]
    return value


class Command(BaseCommand):
    help = "Revoke a download link (and its package's enrollment token) by prefix or URL."

    def add_arguments(self, parser):
        parser.add_argument("link", help="The link's prefix, or the whole download URL.")

    def handle(self, *args, link, **options):
        prefix = link_prefix(link)
        if not prefix or "/" in prefix:
            raise CommandError(f"{link!r} is neither a download link's prefix nor its URL.")
        found = (
            DownloadLink.objects.all_customers()  # operator command: every customer's
            .select_related("customer")
            .filter(prefix=prefix)
            .first()
        )
        if found is None:
            raise CommandError(f"No download link with the prefix {prefix!r}.")
        if download_link_revoke(found):
            self.stdout.write(
                f"Revoked download link {found.prefix} of {found.customer.slug} and its "
                f"enrollment token: the link serves nothing and its package enrolls no agent."
            )
        else:
            self.stdout.write(
                f"Download link {found.prefix} of {found.customer.slug} was already revoked "
                f"at {found.revoked_at:%Y-%m-%d %H:%M} UTC."
            )
