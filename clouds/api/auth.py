"""Authentication of the agent API: ``Authorization: Bearer acag_<prefix>.<secret>``.

The credential decides the customer (``request.customer``) and the agent
(``request.agent``); nothing in the URL or body can. The row is found by its public prefix
across customers, the secret compared in constant time against the stored hash.
"""

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from ..models import Agent, AgentCredential
from ..services.enrollment import CREDENTIAL_KIND
from ..tokens import token_matches, token_parse

# Stamping every request would write a row per chunk batch; once a minute says "alive".
STAMP_EVERY = timedelta(seconds=60)


class AgentPrincipal:
    """``request.user`` of an agent request: authenticated, but not a portal user."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, agent: Agent):
        self.agent = agent

    def __str__(self) -> str:
        return f"agent {self.agent.display_id}"


class AgentCredentialAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, text = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None  # another scheme: not ours to judge
        parsed = token_parse(CREDENTIAL_KIND, text)
        if parsed is None:
            raise exceptions.AuthenticationFailed(
                "Malformed agent credential: send 'Authorization: Bearer acag_<prefix>.<secret>'."
            )
        credential = (
            AgentCredential.objects.all_customers()  # the credential decides the customer
            .select_related("agent", "agent__cloud", "customer")
            .filter(prefix=parsed.prefix)
            .first()
        )
        if credential is None or not token_matches(credential.secret_hash, parsed.secret):
            raise exceptions.AuthenticationFailed("Unknown agent credential.")
        if credential.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                "This agent credential was revoked; enroll the agent again."
            )
        customer = credential.customer
        if not customer.is_active:
            raise exceptions.AuthenticationFailed("The customer of this agent is inactive.")
        agent = credential.agent
        _stamp(credential, agent)
        request.customer = customer
        request.agent = agent
        return AgentPrincipal(agent), credential

    def authenticate_header(self, request):
        return f'{self.keyword} realm="acura-agent"'


def _stamp(credential: AgentCredential, agent: Agent) -> None:
    now = timezone.now()
    if credential.last_used_at is None or now - credential.last_used_at > STAMP_EVERY:
        AgentCredential.objects.for_customer(credential.customer_id).filter(
            pk=credential.pk
        ).update(last_used_at=now)
        credential.last_used_at = now
    if agent.last_seen_at is None or now - agent.last_seen_at > STAMP_EVERY:
        Agent.objects.for_customer(agent.customer_id).filter(pk=agent.pk).update(last_seen_at=now)
        agent.last_seen_at = now


class IsAgent(permissions.BasePermission):
    message = (
        "This endpoint is for replication agents: send 'Authorization: Bearer acag_…' "
        "(the credential from enroll)."
    )

    def has_permission(self, request, view):
        return isinstance(request.auth, AgentCredential)
