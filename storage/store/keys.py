"""Per-customer data keys, wrapped by the server's master key(s).

Each customer has one random 32-byte data key that encrypts its blobs. The database only ever
holds it *wrapped*::

    wrapped = key_id(8) + nonce(12) + AESGCM(master).encrypt(nonce, data_key,
                                                         aad=b"acura-data-key:" + namespace)

Why this shape:

- The master key lives only in the environment (``ACURA_MASTER_KEYS``), so a database dump
  alone decrypts nothing.
- ``key_id`` (first 8 bytes of SHA-256 of the master key) says which master wrapped a key, so
  several masters can be configured at once. Rotation re-wraps the small data keys and never
  re-encrypts data: put the new master first and the old one after it, run the re-wrap command
  (``needs_rewrap`` / ``rewrap``), then drop the old master.
- The namespace is associated data, so a wrapped key copied onto another customer's row does
  not unwrap there.

Encryption is optional: without ``ACURA_MASTER_KEYS`` (:func:`load_keyring` returns ``None``)
blobs are stored unencrypted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import BlobKeyError, KeyConfigError

KEY_SIZE = 32
KEY_ID_SIZE = 8
NONCE_SIZE = 12
WRAPPED_SIZE = KEY_ID_SIZE + NONCE_SIZE + KEY_SIZE + 16
_AAD_PREFIX = b"acura-data-key:"
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def new_data_key() -> bytes:
    """A fresh random data key for a new customer namespace."""
    return os.urandom(KEY_SIZE)


def key_id(master: bytes) -> bytes:
    """The 8-byte id under which a wrapped key names its master key (not secret: a hash)."""
    return hashlib.sha256(master).digest()[:KEY_ID_SIZE]


def _aad(namespace: str) -> bytes:
    return _AAD_PREFIX + namespace.encode()


def _decode_key(text: str, position: int) -> bytes:
    """Decode one base64 (standard or urlsafe, padding optional) master key.

    Error messages name the position only, never the value, so that a typo in the
    environment does not end up in logs with the rest of the key next to it.
    """
    if not _BASE64.fullmatch(text):
        raise KeyConfigError(f"ACURA_MASTER_KEYS entry {position} is not valid base64")
    standard = text.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"ACURA_MASTER_KEYS entry {position} is not valid base64") from None
    if len(raw) != KEY_SIZE:
        raise KeyConfigError(
            f"ACURA_MASTER_KEYS entry {position} decodes to {len(raw)} bytes; "
            f"a master key must be {KEY_SIZE} bytes (e.g. `openssl rand -base64 32`)"
        )
    return raw


class Keyring:
    """The configured master keys: the first is current (it wraps), all of them unwrap."""

    __slots__ = ("_current", "_masters")

    def __init__(self, master_keys: list[bytes]):
        if not master_keys:
            raise KeyConfigError("a keyring needs at least one master key")
        masters: dict[bytes, bytes] = {}
        for position, master in enumerate(master_keys, start=1):
            if not isinstance(master, bytes) or len(master) != KEY_SIZE:
                raise KeyConfigError(f"master key {position} must be {KEY_SIZE} bytes")
            masters.setdefault(key_id(master), master)
        self._masters = masters
        self._current = key_id(master_keys[0])

    @classmethod
    def from_env(cls, value: str) -> Keyring:
        """Parse ``ACURA_MASTER_KEYS``: comma-separated base64 32-byte keys, current first.
        Whitespace around entries is ignored; an empty value is an error (use
        :func:`load_keyring` when "unset means no encryption")."""
        entries = [part.strip() for part in value.split(",")]
        if not any(entries):
            raise KeyConfigError("ACURA_MASTER_KEYS is empty")
        if not all(entries):
            raise KeyConfigError("ACURA_MASTER_KEYS has an empty entry (stray comma?)")
        return cls([_decode_key(text, pos) for pos, text in enumerate(entries, start=1)])

    def __repr__(self) -> str:  # never show key material
        return f"<Keyring current={self._current.hex()} keys={len(self._masters)}>"

    @property
    def current_id(self) -> bytes:
        """Key id of the master that wraps new keys."""
        return self._current

    def wrap(self, data_key: bytes, namespace: str) -> bytes:
        """Wrap ``data_key`` for ``namespace`` with the current master key."""
        if len(data_key) != KEY_SIZE:
            raise ValueError(f"data key must be {KEY_SIZE} bytes")
        nonce = os.urandom(NONCE_SIZE)
        sealed = AESGCM(self._masters[self._current]).encrypt(nonce, data_key, _aad(namespace))
        return self._current + nonce + sealed

    def unwrap(self, wrapped: bytes, namespace: str) -> bytes:
        """Recover the data key. ``BlobKeyError`` when no configured master has the key's id
        (the master was dropped too early) or authentication fails (wrong namespace, damaged
        value)."""
        if len(wrapped) != WRAPPED_SIZE:
            raise BlobKeyError(f"wrapped key must be {WRAPPED_SIZE} bytes, got {len(wrapped)}")
        kid = bytes(wrapped[:KEY_ID_SIZE])
        master = self._masters.get(kid)
        if master is None:
            raise BlobKeyError(f"no master key with id {kid.hex()} is configured")
        nonce = wrapped[KEY_ID_SIZE : KEY_ID_SIZE + NONCE_SIZE]
        try:
            return AESGCM(master).decrypt(
                nonce, wrapped[KEY_ID_SIZE + NONCE_SIZE :], _aad(namespace)
            )
        except InvalidTag:
            raise BlobKeyError(
                "cannot unwrap the data key (wrong namespace or damaged wrapped key)"
            ) from None

    def needs_rewrap(self, wrapped: bytes) -> bool:
        """True when ``wrapped`` was wrapped by a master other than the current one."""
        return bytes(wrapped[:KEY_ID_SIZE]) != self._current

    def rewrap(self, wrapped: bytes, namespace: str) -> bytes:
        """Unwrap with whichever master wrapped it and wrap again with the current one.

        Always unwraps (so a damaged value is reported, not carried forward); returns the
        input unchanged when it is already wrapped by the current master, which makes the
        re-wrap command idempotent and free to re-run.
        """
        data_key = self.unwrap(wrapped, namespace)
        if not self.needs_rewrap(wrapped):
            return bytes(wrapped)
        return self.wrap(data_key, namespace)


def load_keyring(value: str | None) -> Keyring | None:
    """``None`` when ``ACURA_MASTER_KEYS`` is unset or blank (encryption off), else the
    parsed keyring (``KeyConfigError`` when malformed — never silently unencrypted)."""
    if value is None or not value.strip():
        return None
    return Keyring.from_env(value)
