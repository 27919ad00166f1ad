"""The interface every chunk backend implements, and the checks of every name that reaches one.

Everything of a customer lives under its namespace (an opaque random id, 32 lowercase hex
chars, never the slug): chunks under ``<ns>/chunks/``, other objects (index files) under
``<ns>/objects/``, quarantined chunks under ``<ns>/quarantine/``. Dedup never crosses a
namespace, so nothing one customer can observe depends on another customer's chunks.

Every name that reaches a backend is validated here first (namespace, digest, object name):
a bad name is a ``ValueError`` before any path or key is built, so user-influenced input can
never address anything outside the namespace it was meant for (no "..", no absolute paths).
"""

from __future__ import annotations

import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import NamedTuple

_NAMESPACE = re.compile(r"[0-9a-f]{32}")
_DIGEST_HEX = re.compile(r"[0-9a-f]{64}")
# A path component may not start with "." (excludes "." / ".." and the backends' own
# ".<name>.<random>.tmp" files); only portable characters; at most 200 of them (file systems
# allow 255 per name, and the temp file adds a few); components joined by single "/".
_COMPONENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}"
_OBJECT_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_OBJECT_PREFIX = re.compile(rf"(?:{_COMPONENT}/)*(?:{_COMPONENT})?")
MAX_OBJECT_NAME = 512


class ChunkStat(NamedTuple):
    digest_hex: str
    size: int
    mtime: float  # seconds since the epoch (GC compares it with its grace period)


class ObjectStat(NamedTuple):
    name: str
    size: int
    mtime: float


class QuarantineStat(NamedTuple):
    """A quarantined chunk: its digest, the entry name (``<hex>.<timestamp>``), its size,
    when it was quarantined and the reason given."""

    digest_hex: str
    name: str
    size: int
    mtime: float
    reason: str


def new_namespace() -> str:
    """A fresh namespace id for a new customer store (opaque, 128 random bits)."""
    return secrets.token_hex(16)


def check_namespace(ns: str) -> str:
    if not isinstance(ns, str) or not _NAMESPACE.fullmatch(ns):
        raise ValueError("namespace must be 32 lowercase hex characters")
    return ns


def check_digest_hex(digest_hex: str) -> str:
    if not isinstance(digest_hex, str) or not _DIGEST_HEX.fullmatch(digest_hex):
        raise ValueError("chunk digest must be 64 lowercase hex characters")
    return digest_hex


def check_object_name(name: str) -> str:
    if (
        not isinstance(name, str)
        or len(name) > MAX_OBJECT_NAME
        or ".." in name
        or not _OBJECT_NAME.fullmatch(name)
    ):
        raise ValueError(
            f"invalid object name {name!r}: use [A-Za-z0-9._-] components (<= 200 chars) "
            "separated by '/', none starting with '.', no '..', no leading or trailing '/'"
        )
    return name


def check_object_prefix(prefix: str) -> str:
    """A listing prefix: "" or the start of a valid object name (may end with "/")."""
    if (
        not isinstance(prefix, str)
        or len(prefix) > MAX_OBJECT_NAME
        or ".." in prefix
        or not _OBJECT_PREFIX.fullmatch(prefix)
    ):
        raise ValueError(f"invalid object prefix {prefix!r}")
    return prefix


class ChunkBackend(ABC):
    """Where blobs and index files live. Implementations validate every name (``ValueError``)
    and make writes atomic: a reader sees the old object, the new one, or nothing — never a
    partial object. ``ChunkNotFound`` / ``ObjectNotFound`` for missing things; other failures
    are ``BackendError``."""

    @abstractmethod
    def put_chunk(self, ns: str, digest_hex: str, blob: bytes) -> None:
        """Store a blob at its address (atomic; overwriting is fine — same content)."""

    @abstractmethod
    def get_chunk(self, ns: str, digest_hex: str) -> bytes:
        """The blob at the address; ``ChunkNotFound`` when there is none."""

    @abstractmethod
    def delete_chunk(self, ns: str, digest_hex: str) -> None:
        """Remove a chunk; a missing chunk is fine (GC may race with itself)."""

    @abstractmethod
    def has_chunk(self, ns: str, digest_hex: str) -> bool: ...

    @abstractmethod
    def iter_chunks(self, ns: str) -> Iterator[ChunkStat]:
        """Every chunk of the namespace (GC sweep, usage accounting). Temporary files of
        in-flight writes are never listed."""

    @abstractmethod
    def quarantine_chunk(self, ns: str, digest_hex: str, reason: str) -> None:
        """Move a (bad) chunk out of the address space but keep its bytes and the reason for
        forensics; the next upload of that digest stores a fresh copy. ``ChunkNotFound`` when
        the chunk is not there."""

    @abstractmethod
    def iter_quarantine(self, ns: str) -> Iterator[QuarantineStat]:
        """What was quarantined in the namespace."""

    @abstractmethod
    def put_object(self, ns: str, name: str, data: bytes) -> None:
        """Store a named object (index files etc.; name like ``indexes/<uuid>.idx``)."""

    @abstractmethod
    def get_object(self, ns: str, name: str) -> bytes:
        """The object's bytes; ``ObjectNotFound`` when there is none."""

    @abstractmethod
    def delete_object(self, ns: str, name: str) -> None:
        """Remove an object; a missing object is fine."""

    @abstractmethod
    def iter_objects(self, ns: str, prefix: str = "") -> Iterator[ObjectStat]:
        """Objects whose name starts with ``prefix`` (a string prefix, as in S3), by name."""

    def missing_chunks(self, ns: str, digests_hex: Iterable[str]) -> list[str]:
        """The digests of the batch this namespace does not have, in input order (the
        upload protocol's "which do you lack" question). Backends may override this with a
        batched implementation."""
        return [d for d in digests_hex if not self.has_chunk(ns, d)]
