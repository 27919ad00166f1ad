"""Enrollment tokens and agent credentials: how an agent gets (and loses) its identity.

A token decides everything about the agent it enrolls (customer, platform, target group,
cloud); the agent only tells its hostname and version. Secrets are returned once, by the
service that makes them, and only their hashes are stored (``clouds.tokens``).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from protection.models import Platform

from ..models import Agent, AgentCredential, AgentStatus, EnrollmentToken
from ..tokens import token_matches, token_new, token_parse

ENROLLMENT_KIND = "acet"
CREDENTIAL_KIND = "acag"
MAX_EXPIRES_HOURS = 24 * 365
MAX_USES = 10_000
HOSTNAME_MAX = 255
VERSION_MAX = 64


class EnrollmentRefused(Exception):
    """The token cannot enroll an agent (unknown, expired, revoked, used up, inactive
    customer). The API answers 401 with ``message``; nothing was changed."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class NewEnrollmentToken:
    token: EnrollmentToken
    text: str  # shown once


@dataclass(frozen=True)
class Enrolled:
    agent: Agent
    credential: AgentCredential
    text: str  # the agent credential, shown once


def enrollment_token_create(
    customer,
    *,
    platform: str,
    group=None,
    cloud=None,
    expires_hours: int = 24,
    max_uses: int = 1,
    created_by=None,
    secret: str | None = None,
) -> NewEnrollmentToken:
    """A new token for ``customer``; its text is in the answer and nowhere else."""
    errors = {}
    if platform not in Platform.values:
        errors["platform"] = f"Unknown platform {platform!r}; one of {', '.join(Platform.values)}."
    if isinstance(expires_hours, bool) or not isinstance(expires_hours, int):
        errors["expires_hours"] = "Must be a whole number of hours."
    elif not 1 <= expires_hours <= MAX_EXPIRES_HOURS:
        errors["expires_hours"] = f"Must be between 1 and {MAX_EXPIRES_HOURS} hours."
    if isinstance(max_uses, bool) or not isinstance(max_uses, int):
        errors["max_uses"] = "Must be a whole number."
    elif not 1 <= max_uses <= MAX_USES:
        errors["max_uses"] = f"Must be between 1 and {MAX_USES}."
    if group is not None and group.customer_id != customer.pk:
        errors["group"] = "No such group."
    if cloud is not None:
        if cloud.customer_id != customer.pk:
            errors["cloud"] = "No such cloud."
        elif cloud.platform != platform:
            errors["cloud"] = f"Cloud {cloud.name} is a {cloud.get_platform_display()} platform."
    if errors:
        raise ValidationError(errors, code="invalid")
    new = token_new(ENROLLMENT_KIND, secret)
    token = EnrollmentToken.objects.create(
        customer=customer,
        platform=platform,
        group=group,
        cloud=cloud,
        prefix=new.prefix,
        secret_hash=new.secret_hash,
        expires_at=timezone.now() + timedelta(hours=expires_hours),
        max_uses=max_uses,
        created_by=created_by,
    )
    return NewEnrollmentToken(token, new.text)


def revoke_issued(row) -> bool:
    """Stamp ``revoked_at`` on a token, credential or download link row unless it already
    has one; True when this call revoked it."""
    updated = (
        type(row)
        .objects.for_customer(row.customer_id)
        .filter(pk=row.pk, revoked_at__isnull=True)
        .update(revoked_at=timezone.now())
    )
    row.refresh_from_db()
    return bool(updated)


def enrollment_token_revoke(token: EnrollmentToken) -> bool:
    """Refuse ``token`` from now on; False (nothing changes) when it already was revoked."""
    return revoke_issued(token)


def _clean_text(value, field: str, limit: int, errors: dict) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[field] = "Must be a string."
        return ""
    value = value.strip()
    if len(value) > limit:
        errors[field] = f"At most {limit} characters."
    return value


def _credential_new(agent: Agent) -> tuple[AgentCredential, str]:
    new = token_new(CREDENTIAL_KIND)
    credential = AgentCredential.objects.create(
        customer_id=agent.customer_id,
        agent=agent,
        prefix=new.prefix,
        secret_hash=new.secret_hash,
        last4=new.last4,
    )
    return credential, new.text


def agent_enroll(token_text: str, *, hostname: str, version: str, platform=None) -> Enrolled:
    """Exchange an enrollment token for a new agent and its credential.

    The use is counted by a conditional UPDATE inside the transaction that creates the
    agent, with the token row locked where the database can: two agents racing for the
    last use cannot both enroll, and a failed enrollment does not spend a use.
    """
    errors: dict[str, str] = {}
    hostname = _clean_text(hostname, "hostname", HOSTNAME_MAX, errors)
    version = _clean_text(version, "version", VERSION_MAX, errors)
    if not hostname and "hostname" not in errors:
        errors["hostname"] = "This field is required."
    if platform not in (None, "") and platform not in Platform.values:
        errors["platform"] = f"Unknown platform {platform!r}; one of {', '.join(Platform.values)}."
    if errors:
        raise ValidationError(errors, code="invalid")
    parsed = token_parse(ENROLLMENT_KIND, token_text)
    if parsed is None:
        raise EnrollmentRefused(
            "This is not an enrollment token (they look like acet_<prefix>.<secret>)."
        )
    with transaction.atomic():
        token = (
            EnrollmentToken.objects.all_customers()  # the token decides the customer
            .select_for_update()
            .select_related("customer")
            .filter(prefix=parsed.prefix)
            .first()
        )
        if token is None or not token_matches(token.secret_hash, parsed.secret):
            raise EnrollmentRefused("Unknown enrollment token.")
        now = timezone.now()
        refusal = token.refusal(now)
        if refusal:
            raise EnrollmentRefused(refusal)
        if not token.customer.is_active:
            raise EnrollmentRefused("The customer of this enrollment token is inactive.")
        if platform and platform != token.platform:
            raise ValidationError(
                {
                    "platform": f"This token enrolls {token.get_platform_display()} agents, "
                    f"not {Platform(platform).label}."
                },
                code="platform_mismatch",
            )
        counted = (
            EnrollmentToken.objects.for_customer(token.customer)
            .filter(pk=token.pk, uses__lt=F("max_uses"), revoked_at__isnull=True)
            .update(uses=F("uses") + 1)
        )
        if not counted:  # another enrollment took the last use in the meantime
            raise EnrollmentRefused("This enrollment token has been used up.")
        agent = Agent.objects.create(
            customer=token.customer,
            platform=token.platform,
            group=token.group,
            cloud=token.cloud,
            hostname=hostname,
            version=version,
            status=AgentStatus.PENDING,
            enrolled_with=token,
            created_at=now,
        )
        credential, text = _credential_new(agent)
    return Enrolled(agent, credential, text)


def agent_credential_revoke(agent: Agent) -> int:
    """Revoke the agent's active credential: its next request is a 401. Returns how many
    credentials were revoked (0 when none was active)."""
    return (
        AgentCredential.objects.for_customer(agent.customer_id)
        .filter(agent=agent, revoked_at__isnull=True)
        .update(revoked_at=timezone.now())
    )


def credential_revoke(credential: AgentCredential) -> bool:
    """Revoke one credential row (the admin's action); False when it already was."""
    return revoke_issued(credential)


def agent_credential_rotate(agent: Agent) -> tuple[AgentCredential, str]:
    """A new credential for ``agent`` (the old one stops working at once); the new text is
    returned once, for the operator to put into the agent's config."""
    with transaction.atomic():
        agent_credential_revoke(agent)
        return _credential_new(agent)
