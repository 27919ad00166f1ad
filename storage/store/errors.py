"""Exceptions of the store library.

Everything the library raises on purpose derives from :class:`StoreError`, so callers (services,
tasks, management commands) can catch one type and still tell the cases apart where it matters:
a corrupt blob is quarantined, a key error is a configuration problem, a missing chunk is
re-requested from the agent. Configuration errors are also ``ValueError`` so that settings code
that already catches ``ValueError`` keeps working.
"""


class StoreError(Exception):
    """Base class of every error the store library raises deliberately."""


class BlobCorrupt(StoreError):
    """The stored bytes are damaged: bad magic, CRC mismatch, truncated or undecompressable
    payload, or a payload that would decompress beyond the allowed size (decompression bomb)."""


class BlobKeyError(StoreError):
    """The blob (or wrapped data key) cannot be decrypted: no key was given for an encrypted
    blob, the key is wrong, no master key with the wrapping key id is configured, or the
    authentication tag does not verify (which includes a blob moved to another address, since
    the digest is the associated data)."""


class DigestMismatch(StoreError):
    """The decoded plaintext does not hash to the digest it is stored under."""


class KeyConfigError(StoreError, ValueError):
    """The master key configuration (``ACURA_MASTER_KEYS``) is malformed. The message names the
    position of the bad entry, never its value, so logs do not leak key material."""


class StoreConfigError(StoreError, ValueError):
    """The store URL (``ACURA_STORE_URL``) cannot be turned into a backend."""


class IndexCorrupt(StoreError):
    """An index file or an index chain is damaged or inconsistent (bad magic, trailer checksum,
    structure, a delta applied to the wrong base, or a final checksum that is not the one the
    caller expected)."""


class BackendError(StoreError):
    """The backend failed for a reason other than a missing object (I/O error, S3 error)."""


class NotFound(StoreError):
    """Base class of the "does not exist" errors of the backends."""


class ChunkNotFound(NotFound):
    """No chunk with this digest exists in the namespace."""


class ObjectNotFound(NotFound):
    """No object with this name exists in the namespace."""
