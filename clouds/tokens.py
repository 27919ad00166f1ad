"""Bearer secrets shown once and stored hashed: enrollment tokens, agent credentials, links.

A token reads ``<kind>_<prefix>.<secret>``. The prefix is public (it finds the row, and the
admin shows it); only SHA-256 of the secret is stored, so a database dump gives nobody a
working token. The kind keeps a credential from being accepted where a token is expected.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class NewToken:
    prefix: str
    secret_hash: str
    text: str  # what the user gets, once

    @property
    def last4(self) -> str:
        return self.text[-4:]


@dataclass(frozen=True)
class ParsedToken:
    prefix: str
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_new(kind: str, secret: str | None = None) -> NewToken:
    """A new token of ``kind``; ``secret`` when the caller derived one (a download link's
    enrollment token), else 256 random bits."""
    prefix = secrets.token_hex(6)
    secret = secret or secrets.token_urlsafe(32)
    return NewToken(prefix, hash_secret(secret), f"{kind}_{prefix}.{secret}")


def token_parse(kind: str, text: str) -> ParsedToken | None:
    """The parts of ``text`` if it is shaped like a ``kind`` token, else None."""
    text = (text or "").strip()
    head = f"{kind}_"
    if not text.startswith(head):
        return None
    prefix, dot, secret = text[len(head) :].partition(".")
    if not (prefix and dot and secret) or len(prefix) > 32 or len(secret) > 128:
        return None
    return ParsedToken(prefix, secret)


def token_matches(secret_hash: str, secret: str) -> bool:
    return hmac.compare_digest(secret_hash, hash_secret(secret))
