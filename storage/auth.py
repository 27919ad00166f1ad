"""Interim agent authentication for the storage API: per-customer API keys.

The agents release replaces this with enrolled agent credentials; the rule stays the same:
the customer always comes from the credential, never from the request body or URL.
Keys look like ``ak_<prefix>.<secret>``; only a SHA-256 of the secret is stored.
"""

import hashlib
import hmac
import secrets

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from .models import StorageApiKey


class AgentPrincipal:
    """``request.user`` for API-key requests: authenticated, but not a portal user."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, key: StorageApiKey):
        self.key = key
        self.pk = None

    def __str__(self) -> str:
        return f"api-key {self.key.prefix}"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(customer, name: str) -> tuple[StorageApiKey, str]:
    """A new key; the full token is returned once and never stored."""
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    key = StorageApiKey.objects.create(
        customer=customer, name=name, prefix=prefix, secret_hash=_hash(secret)
    )
    return key, f"ak_{prefix}.{secret}"


def api_key_revoke(key: StorageApiKey) -> bool:
    """Revoke ``key`` from now on; False (and nothing changes) when it already was."""
    updated = (
        StorageApiKey.objects.for_customer(key.customer)
        .filter(pk=key.pk, revoked_at__isnull=True)
        .update(revoked_at=timezone.now())
    )
    key.refresh_from_db()
    return bool(updated)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None  # another scheme: not ours to judge
        token = token.strip()
        prefix, dot, secret = token[3:].partition(".")
        if not token.startswith("ak_") or not (prefix and dot and secret):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        key = (
            StorageApiKey.objects.all_customers()  # the credential decides the customer
            .select_related("customer")
            .filter(prefix=prefix)
            .first()
        )
        if key is None or not hmac.compare_digest(key.secret_hash, _hash(secret)):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key was revoked.")
        if not key.customer.is_active:
            raise exceptions.AuthenticationFailed("The customer of this API key is inactive.")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            StorageApiKey.objects.for_customer(key.customer).filter(pk=key.pk).update(
                last_used_at=now
            )
        request.customer = key.customer
        return AgentPrincipal(key), key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="acura-agent"'


class IsAgent(permissions.BasePermission):
    message = "This endpoint is for replication agents: send 'Authorization: Bearer <key>'."

    def has_permission(self, request, view):
        return isinstance(request.auth, StorageApiKey)
