"""Blob format: how one chunk is stored.

Layout (all integers big-endian)::

    offset 0  : 8-byte magic  b"ACBLOB" + encrypted flag byte + compressed flag byte
    offset 8  : CRC32 (zlib.crc32, unsigned) of the payload
    offset 12 : payload

    plain            payload = plaintext
    zstd             payload = one zstd frame of the plaintext
    encrypted        payload = nonce(12) + AES-256-GCM(plaintext) (ciphertext + 16-byte tag)
    zstd+encrypted   payload = nonce(12) + AES-256-GCM(zstd frame)

Why each part exists:

- The magic says how to decode without any side table, so a blob is self-describing and a
  forensic copy (quarantine) can still be read.
- The CRC catches storage rot cheaply and *before* decryption, so a flipped bit is reported as
  corruption (``BlobCorrupt``) rather than as a key problem.
- The AES-GCM associated data is the 32-byte digest (the chunk's address): an encrypted blob
  copied or renamed to another address fails authentication, so nobody with write access to
  the bucket can swap chunks between addresses undetected.
- Compression is kept only when it makes the blob smaller; random data is stored plain.

Performance: this module is on the ingest and restore hot path. zstd contexts are created once
per thread (``threading.local``; the context objects are not thread-safe, and creating one per
call costs ~15 us plus allocator churn), buffers are passed as ``memoryview`` slices instead of
being sliced into copies, and the only full copies are the unavoidable ones (the compressed or
encrypted output, and joining the header to it).
"""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from functools import lru_cache

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import BlobCorrupt, BlobKeyError, DigestMismatch

MAGIC_PLAIN = b"ACBLOB\x00\x00"
MAGIC_ZSTD = b"ACBLOB\x00\x01"
MAGIC_ENCRYPTED = b"ACBLOB\x01\x00"
MAGIC_ZSTD_ENCRYPTED = b"ACBLOB\x01\x01"

#: magic -> (compressed, encrypted)
_KINDS = {
    MAGIC_PLAIN: (False, False),
    MAGIC_ZSTD: (True, False),
    MAGIC_ENCRYPTED: (False, True),
    MAGIC_ZSTD_ENCRYPTED: (True, True),
}
_MAGIC = {kind: magic for magic, kind in _KINDS.items()}

HEADER_SIZE = 12
NONCE_SIZE = 12
TAG_SIZE = 16
DIGEST_SIZE = 32
KEY_SIZE = 32
ZSTD_FRAME_MAGIC = b"\x28\xb5\x2f\xfd"

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    """The calling thread's compressor for ``level`` (created on first use)."""
    cache = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    cctx = cache.get(level)
    if cctx is None:
        # write_content_size (the default) puts the plaintext length into the frame header,
        # which lets decode_blob reject a decompression bomb before allocating anything.
        cctx = cache[level] = zstandard.ZstdCompressor(level=level)
    return cctx


def _decompressor() -> zstandard.ZstdDecompressor:
    """The calling thread's decompressor (created on first use)."""
    dctx = getattr(_local, "decompressor", None)
    if dctx is None:
        dctx = _local.decompressor = zstandard.ZstdDecompressor()
    return dctx


def chunk_digest(data: bytes | memoryview) -> bytes:
    """The chunk address: SHA-256 of the plaintext, 32 raw bytes."""
    return hashlib.sha256(data).digest()


@lru_cache(maxsize=8)
def _zeros(size: int) -> bytes:
    return bytes(size)


def is_zero(data: bytes | memoryview) -> bool:
    """True when every byte is zero. Such chunks are never stored (the index marks them with
    ZERO_DIGEST). Compares against a cached zero buffer: a memcmp, ~10 us per MiB."""
    if not isinstance(data, bytes):
        data = bytes(data)
    return data == _zeros(len(data))


def _check_digest(digest: bytes) -> None:
    if not isinstance(digest, bytes | bytearray) or len(digest) != DIGEST_SIZE:
        raise ValueError("digest must be 32 raw bytes (SHA-256 of the plaintext)")


def _check_key(key: bytes | None) -> None:
    if key is not None and len(key) != KEY_SIZE:
        raise ValueError("data key must be 32 bytes (AES-256)")


def _seal(magic: bytes, payload: bytes | memoryview, digest: bytes, key: bytes | None) -> bytes:
    """Encrypt ``payload`` when a key is given, prepend magic and CRC."""
    if key is None:
        crc = zlib.crc32(payload)
        return b"".join((magic, crc.to_bytes(4, "big"), payload))
    nonce = os.urandom(NONCE_SIZE)
    sealed = AESGCM(key).encrypt(nonce, payload, bytes(digest))
    crc = zlib.crc32(sealed, zlib.crc32(nonce))
    return b"".join((magic, crc.to_bytes(4, "big"), nonce, sealed))


def encode_blob(
    plain: bytes | memoryview,
    digest: bytes,
    *,
    key: bytes | None,
    level: int | None = 1,
) -> bytes:
    """Build the blob for one chunk.

    Compresses with zstd at ``level`` and keeps the compressed form only when it is smaller.
    ``level=None`` skips the compression attempt and stores the plaintext as is: the upload path
    uses it when the agent's own zstd frame already proved the chunk incompressible, so the
    server does not burn CPU compressing it a second time. ``key`` (32 bytes) encrypts with
    AES-256-GCM, the digest being the associated data. The caller is responsible for ``digest``
    being the SHA-256 of ``plain`` (decode_blob re-checks it on every read).
    """
    _check_digest(digest)
    _check_key(key)
    compressed = False
    payload: bytes | memoryview = plain
    if level is not None and len(plain):
        frame = _compressor(level).compress(plain)
        if len(frame) < len(plain):
            payload, compressed = frame, True
    return _seal(_MAGIC[(compressed, key is not None)], payload, digest, key)


def encode_from_frame(
    frame: bytes | memoryview, plain_len: int, digest: bytes, *, key: bytes | None
) -> bytes:
    """Build a blob from an already-compressed zstd frame (what agents upload), without
    recompressing it.

    Which path the server uses: the upload endpoint receives one zstd frame per chunk, must
    decompress it anyway to verify the digest and the length, and then stores

    - ``encode_from_frame(frame, len(plain), digest, key=key)`` when ``len(frame) < len(plain)``
      (the agent already paid for compression; the frame is kept byte for byte), else
    - ``encode_blob(plain, digest, key=key, level=None)`` (incompressible: store plain).

    :func:`encode_uploaded` makes exactly that choice. In-process ingest (bench, tests) calls
    :func:`encode_blob` directly. Raises ``ValueError`` when the frame is not smaller than the
    plaintext (the caller must store the plaintext instead), when it does not start with the zstd
    magic, or when its header declares a content size other than ``plain_len``.
    """
    _check_digest(digest)
    _check_key(key)
    if len(frame) >= plain_len:
        raise ValueError(
            "the zstd frame is not smaller than the plaintext; store the plaintext with "
            "encode_blob(plain, digest, key=key, level=None)"
        )
    if bytes(frame[:4]) != ZSTD_FRAME_MAGIC:
        raise ValueError("not a zstd frame (bad frame magic)")
    try:
        declared = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise ValueError(f"not a zstd frame: {exc}") from None
    if declared not in (-1, plain_len):
        raise ValueError(f"zstd frame declares {declared} bytes, expected {plain_len}")
    return _seal(_MAGIC[(True, key is not None)], frame, digest, key)


def encode_uploaded(
    frame: bytes | memoryview, plain: bytes | memoryview, digest: bytes, *, key: bytes | None
) -> bytes:
    """The server's choice for an uploaded chunk whose ``plain`` text was already decompressed
    from ``frame`` and verified: keep the agent's frame when it is smaller, else store plain."""
    if len(frame) < len(plain):
        return encode_from_frame(frame, len(plain), digest, key=key)
    return encode_blob(plain, digest, key=key, level=None)


def blob_info(blob: bytes | memoryview) -> tuple[bool, bool]:
    """``(compressed, encrypted)`` from the magic; ``BlobCorrupt`` for an unknown magic."""
    kind = _KINDS.get(bytes(blob[:8]))
    if kind is None:
        raise BlobCorrupt("not a blob (bad magic)")
    return kind


def decompress_bounded(frame: bytes | memoryview, max_size: int) -> bytes:
    """Decompress exactly one zstd frame into at most ``max_size`` bytes.

    zstandard allocates whatever the frame header declares and ignores ``max_output_size`` when a
    content size is present, so the declared size is checked first: a 3 KiB frame declaring
    100 GiB fails here instead of exhausting memory. Frames without a declared size are decoded
    into a buffer of ``max_size`` and fail when they need more. Trailing bytes after the frame
    are rejected. Also used by the upload API to decode agent frames.
    """
    if max_size < 0:
        raise ValueError("max_size must not be negative")
    try:
        declared = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise BlobCorrupt(f"undecompressable payload: {exc}") from None
    if declared > max_size:
        raise BlobCorrupt(f"payload would decompress to {declared} bytes (limit {max_size})")
    try:
        # max_output_size=0 would mean "unlimited": only pass it for frames without a declared
        # size, and at least 1 (the length check below covers max_size == 0).
        plain = _decompressor().decompress(
            frame, max_output_size=max(max_size, 1) if declared < 0 else 0, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        raise BlobCorrupt(f"undecompressable payload: {exc}") from None
    if len(plain) > max_size:
        raise BlobCorrupt(f"payload decompresses to more than {max_size} bytes")
    return plain


def decode_blob(
    blob: bytes | memoryview, digest: bytes | None, *, key: bytes | None, max_size: int
) -> bytes:
    """Return the plaintext of a blob, checking everything on the way.

    Order matters: magic and length, then CRC (storage rot → ``BlobCorrupt`` even for encrypted
    blobs), then decryption (wrong/missing key or wrong address → ``BlobKeyError``), then bounded
    decompression (``BlobCorrupt``), then — when ``digest`` is given — a re-hash
    (``DigestMismatch``). ``max_size`` is the largest plaintext accepted (the chunk size): it
    bounds memory for hostile or damaged blobs. An encrypted blob needs its ``digest`` since the
    digest is the associated data.
    """
    if digest is not None:
        _check_digest(digest)
    _check_key(key)
    view = memoryview(blob)
    if len(view) < HEADER_SIZE:
        raise BlobCorrupt(f"truncated blob ({len(view)} bytes, header needs {HEADER_SIZE})")
    compressed, encrypted = blob_info(view)
    payload = view[HEADER_SIZE:]
    if zlib.crc32(payload) != int.from_bytes(view[8:HEADER_SIZE], "big"):
        raise BlobCorrupt("CRC mismatch (damaged or truncated blob)")
    data: bytes | memoryview = payload
    if encrypted:
        if digest is None:
            raise ValueError("decoding an encrypted blob needs its digest (associated data)")
        if key is None:
            raise BlobKeyError("blob is encrypted but no data key is configured")
        if len(payload) < NONCE_SIZE + TAG_SIZE:
            raise BlobCorrupt("truncated encrypted payload")
        try:
            data = AESGCM(key).decrypt(payload[:NONCE_SIZE], payload[NONCE_SIZE:], bytes(digest))
        except InvalidTag:
            raise BlobKeyError(
                "authentication failed: wrong data key, or the blob belongs to another address"
            ) from None
    if compressed:
        plain = decompress_bounded(data, max_size)
    else:
        if len(data) > max_size:
            raise BlobCorrupt(f"plaintext of {len(data)} bytes exceeds the limit {max_size}")
        plain = data if isinstance(data, bytes) else bytes(data)
    if digest is not None and hashlib.sha256(plain).digest() != digest:
        raise DigestMismatch("plaintext does not hash to the digest it is stored under")
    return plain
