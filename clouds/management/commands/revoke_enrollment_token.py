"""``revoke_enrollment_token PREFIX``: no agent can enroll with the token from now on.

PREFIX is the prefix that ``create_enrollment_token`` printed (the whole ``acet_…`` token
is accepted too). Agents already enrolled with it keep working. Revoking twice is harmless.
"""

from django.core.management.base import BaseCommand, CommandError

from clouds.models import EnrollmentToken
from clouds.services import enrollment_token_revoke


class Command(BaseCommand):
    help = "Revoke an enrollment token by its prefix."

    def add_arguments(self, parser):
        parser.add_argument("prefix", help="The token's prefix (or the whole token).")

    def handle(self, *args, prefix, **options):
        prefix = prefix.strip()
        if prefix.startswith("acet_"):
            prefix = prefix[len("acet_") :].partition(".")[0]
        if not prefix:
            raise CommandError("Give the token's prefix.")
        token = (
            EnrollmentToken.objects.all_customers()  # operator command: every customer's
            .select_related("customer")
            .filter(prefix=prefix)
            .first()
        )
        if token is None:
            raise CommandError(f"No enrollment token with the prefix {prefix!r}.")
        if enrollment_token_revoke(token):
            self.stdout.write(f"Revoked enrollment token {token.prefix} of {token.customer.slug}.")
        else:
            self.stdout.write(
                f"Enrollment token {token.prefix} of {token.customer.slug} was already revoked "
                f"at {token.revoked_at:%Y-%m-%d %H:%M} UTC."
            )
