"""Sealing the secrets the portal must be able to read back: cloud passwords.

A cloud's password is needed in clear to check the connection and to hand it to the agents of
that cloud, so it cannot be hashed like tokens are. It is sealed with Fernet (AES-128-CBC +
HMAC-SHA256, from ``cryptography``) under a key derived from Django's ``SECRET_KEY`` by HKDF,
so a database dump alone reveals nothing. Keys in ``SECRET_KEY_FALLBACKS`` still open what
they sealed: rotating ``SECRET_KEY`` the Django way keeps every stored password readable, and
saving a cloud (or ``reseal``) moves its password to the new key.
"""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"acura-portal cloud credentials v1"


class SealError(Exception):
    """A sealed value could not be opened: the key that sealed it is gone, or it was altered."""


def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _keyring() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(secret) for secret in secrets])


def seal(text: str) -> str:
    """``text`` sealed under the current key (a different ciphertext every time)."""
    return _keyring().encrypt(text.encode()).decode()


def unseal(sealed: str) -> str:
    """The clear text of ``sealed``; ``SealError`` when no configured key opens it."""
    try:
        return _keyring().decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        raise SealError(
            "A stored password cannot be decrypted: SECRET_KEY changed without the old key in "
            "SECRET_KEY_FALLBACKS. Enter the password again."
        ) from None


def reseal(sealed: str) -> str:
    """``sealed`` under the current key (for key rotation)."""
    try:
        return _keyring().rotate(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        raise SealError("A stored password cannot be decrypted with any configured key.") from None
