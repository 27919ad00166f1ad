"""Index: the ordered chunk digests of one snapshot of one disk, and its file format.

In memory an :class:`Index` is one ``bytes`` of concatenated 32-byte digests, never a list of
per-entry objects: a 1 TiB disk at 1 MiB chunks has 1,048,576 entries (32 MiB), and every
operation here (checksum, comparison, delta application) works on slices of that buffer.

Entry ``i`` covers bytes ``[i*chunk_size, min((i+1)*chunk_size, disk_size))``; an all-zero
range is marked with :data:`ZERO_DIGEST` and never stored.

File format (all integers big-endian), written to the backend as one object::

    magic b"ACIDXF1\\x00" (8) | kind u8 (1 = full, 2 = delta) | chunk_size u32 | disk_size u64 |
    entries u64 | base_checksum 32 raw bytes (zeros for full) | body_len u64 |
    body (zstd frame, body_len bytes) | sha256 of everything before it (32)

    full body  = digests (entries * 32 bytes)
    delta body = n u64 | n x (position u64 | digest 32)   (positions strictly increasing)

Why deltas: a full index of a 1 TiB disk at 1 MiB chunks is 32 MiB (zstd only shrinks the runs
of zero digests; SHA-256 output does not compress); a 1 % daily change stored as a delta of the
previous snapshot's index is 0.36 MiB (measured). With a full file at least every 17 snapshots
(chains hold at most :data:`DELTA_MAX_DEPTH` deltas, so a restore replays at most 16), daily
snapshots cost (32 + 16 x 0.36) / 17 = ~2.2 MiB each on average instead of 32 MiB. Each delta
names the checksum of the index it applies to, so a chain assembled from the wrong files fails
loudly (:class:`IndexCorrupt`) instead of restoring the wrong disk.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .blob import _compressor, decompress_bounded
from .errors import BlobCorrupt, IndexCorrupt

DIGEST_SIZE = 32
ZERO_DIGEST = bytes(DIGEST_SIZE)
MIN_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 64 * 1024 * 1024
#: Upper bound on entries (8 GiB of digests): refuses absurd sizes from damaged headers.
MAX_ENTRIES = 1 << 28
#: Write a delta only when fewer than this fraction of the entries changed ...
DELTA_MAX_FRACTION = 0.25
#: ... and the base's chain holds fewer than this many deltas.
DELTA_MAX_DEPTH = 16

KIND_FULL = 1
KIND_DELTA = 2
FILE_MAGIC = b"ACIDXF1\x00"
_HEADER = struct.Struct(">8sBIQQ32sQ")
_TRAILER_SIZE = 32
_COUNT = struct.Struct(">Q")
_RECORD = struct.Struct(">Q32s")
_CHECKSUM_HEAD = struct.Struct(">IQ")
# changes_from compares blocks of this many entries before looking at single entries: with 1 %
# of entries changed at random it is ~40 ms per 1 Mi entries, with changes in runs ~20 ms.
_BLOCK_ENTRIES = 16


def check_chunk_size(chunk_size: int) -> None:
    """``ValueError`` unless ``chunk_size`` is a power of two between 64 KiB and 64 MiB."""
    if (
        not isinstance(chunk_size, int)
        or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE
        or chunk_size & (chunk_size - 1)
    ):
        raise ValueError(f"chunk size must be a power of two in [64 KiB, 64 MiB], not {chunk_size}")


def entry_count(chunk_size: int, disk_size: int) -> int:
    """ceil(disk_size / chunk_size): the number of entries (0 for an empty disk)."""
    return -(-disk_size // chunk_size)


def _checksum_raw(chunk_size: int, disk_size: int, digests: bytes | bytearray) -> bytes:
    h = hashlib.sha256(b"ACIDX1")
    h.update(_CHECKSUM_HEAD.pack(chunk_size, disk_size))
    h.update(digests)
    return h.digest()


class Index:
    """The digests of one disk snapshot. Immutable; compare with ``==``."""

    __slots__ = ("_checksum", "chunk_size", "digests", "disk_size")

    def __init__(self, chunk_size: int, disk_size: int, digests: bytes):
        check_chunk_size(chunk_size)
        if not isinstance(disk_size, int) or disk_size < 0:
            raise ValueError(f"disk size must be a non-negative integer, not {disk_size!r}")
        entries = entry_count(chunk_size, disk_size)
        if entries > MAX_ENTRIES:
            raise ValueError(f"{entries} entries is more than the supported {MAX_ENTRIES}")
        if len(digests) != entries * DIGEST_SIZE:
            raise ValueError(
                f"{len(digests)} bytes of digests; {entries} entries need {entries * DIGEST_SIZE}"
            )
        self.chunk_size = chunk_size
        self.disk_size = disk_size
        self.digests = digests if type(digests) is bytes else bytes(digests)
        self._checksum: bytes | None = None

    @classmethod
    def _trusted(cls, chunk_size: int, disk_size: int, digests: bytes) -> Index:
        """Skip validation for values this module has already checked (no extra copy)."""
        self = object.__new__(cls)
        self.chunk_size, self.disk_size, self.digests = chunk_size, disk_size, digests
        self._checksum = None
        return self

    @classmethod
    def zeros(cls, chunk_size: int, disk_size: int) -> Index:
        """An index whose every entry is the zero chunk (a fresh, empty disk)."""
        return cls(chunk_size, disk_size, ZERO_DIGEST * entry_count(chunk_size, disk_size))

    @classmethod
    def from_digests(cls, chunk_size: int, disk_size: int, digests: Iterable[bytes]) -> Index:
        """Build from an iterable of 32-byte digests (one per entry, in order)."""
        parts = list(digests)
        if any(len(d) != DIGEST_SIZE for d in parts):
            raise ValueError("every digest must be 32 bytes")
        return cls(chunk_size, disk_size, b"".join(parts))

    def __len__(self) -> int:
        return len(self.digests) // DIGEST_SIZE

    def __getitem__(self, i: int) -> bytes:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("index entry out of range")
        return self.digests[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE]

    def __iter__(self) -> Iterator[bytes]:
        for (digest,) in struct.iter_unpack("32s", self.digests):
            yield digest

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Index):
            return NotImplemented
        return (self.chunk_size, self.disk_size, self.digests) == (
            other.chunk_size,
            other.disk_size,
            other.digests,
        )

    __hash__ = None  # type: ignore[assignment]  (equality is by content; 32 MiB is no hash key)

    def __repr__(self) -> str:
        return (
            f"<Index chunk_size={self.chunk_size} disk_size={self.disk_size} entries={len(self)}>"
        )

    def entry_range(self, i: int) -> tuple[int, int]:
        """``(offset, length)`` of the disk bytes entry ``i`` covers (the last may be short)."""
        if not 0 <= i < len(self):
            raise IndexError("index entry out of range")
        offset = i * self.chunk_size
        return offset, min(self.chunk_size, self.disk_size - offset)

    def checksum_raw(self) -> bytes:
        """The checksum as 32 raw bytes (what delta files store as base_checksum)."""
        if self._checksum is None:
            self._checksum = _checksum_raw(self.chunk_size, self.disk_size, self.digests)
        return self._checksum

    def checksum(self) -> str:
        """THE index checksum (hex): sha256(b"ACIDX1" + chunk_size u32 + disk_size u64 +
        digests). It depends only on the content, not on how the index was stored (full or
        delta), so the agent and the server can compare indexes by this one value."""
        return self.checksum_raw().hex()

    def referenced(self) -> set[bytes]:
        """The distinct non-zero digests: the chunks this snapshot needs (GC marking)."""
        found = {d for (d,) in struct.iter_unpack("32s", self.digests)}
        found.discard(ZERO_DIGEST)
        return found

    def referenced_hex(self) -> set[str]:
        """``referenced()`` as hex strings (how chunks are named in backends and the catalog).
        One ``hex()`` of the whole buffer then 64-character slices: ~2x faster than calling
        ``.hex()`` on a million digests."""
        text = self.digests.hex()
        width = 2 * DIGEST_SIZE
        found = {text[i : i + width] for i in range(0, len(text), width)}
        found.discard(ZERO_DIGEST.hex())
        return found

    def changes_from(self, base: Index) -> list[tuple[int, bytes]]:
        """Positions (with this index's digest) where this index differs from ``base``.

        ``base`` may have another disk size: positions beyond the base count as changed, and
        this index's size governs (entries the base has beyond it simply end). Works on bytes
        slices: whole-buffer equality first, then blocks of 16 entries, then single entries.
        """
        changes = self._changes(base, None)
        assert changes is not None
        return changes

    def _changes(self, base: Index, limit: int | None) -> list[tuple[int, bytes]] | None:
        """``changes_from``, giving up (``None``) as soon as more than ``limit`` changes are
        found: deciding "delta or full" must not pay for listing a fully rewritten disk."""
        if base.chunk_size != self.chunk_size:
            raise ValueError("cannot compare indexes with different chunk sizes")
        a, b = self.digests, base.digests
        n, m = len(self), len(base)
        common = min(n, m) * DIGEST_SIZE
        changes: list[tuple[int, bytes]] = []
        if limit is not None and n - min(n, m) > limit:
            return None
        if n == m and a == b:
            return changes
        if n != m:
            a_common, b_common = a[:common], b[:common]
        else:
            a_common, b_common = a, b
        if a_common != b_common:
            step = _BLOCK_ENTRIES * DIGEST_SIZE
            append = changes.append
            for off in range(0, common, step):
                end = off + step
                if a[off:end] != b[off:end]:
                    for j in range(off, min(end, common), DIGEST_SIZE):
                        digest = a[j : j + DIGEST_SIZE]
                        if digest != b[j : j + DIGEST_SIZE]:
                            append((j // DIGEST_SIZE, digest))
                    if limit is not None and len(changes) > limit:
                        return None
        for j in range(common, len(a), DIGEST_SIZE):
            changes.append((j // DIGEST_SIZE, a[j : j + DIGEST_SIZE]))
        if limit is not None and len(changes) > limit:
            return None
        return changes

    @staticmethod
    def apply(base: Index, disk_size: int, changes: Iterable[tuple[int, bytes]]) -> Index:
        """The index that results from ``base`` resized to ``disk_size`` with ``changes``
        applied. Positions must be strictly increasing and inside the new size, and every
        position beyond the base (a grown disk) must be listed — nothing is guessed."""
        chunk_size = base.chunk_size
        entries = entry_count(chunk_size, disk_size)
        buf = _resized(base.digests, len(base), entries)
        _apply_changes(buf, changes, len(base), entries, ValueError)
        return Index(chunk_size, disk_size, bytes(buf))


def _resized(digests: bytes | bytearray, old: int, entries: int) -> bytearray:
    """A mutable copy of ``digests`` cut or extended (with zero digests) to ``entries``."""
    if entries <= old:
        return bytearray(memoryview(digests)[: entries * DIGEST_SIZE])
    buf = bytearray(digests)
    buf.extend(bytes((entries - old) * DIGEST_SIZE))
    return buf


def _apply_changes(
    buf: bytearray,
    changes: Iterable[tuple[int, bytes]],
    old: int,
    entries: int,
    error: type[Exception],
) -> None:
    """Write ``changes`` into ``buf`` (already resized to ``entries``), raising ``error`` for
    positions out of order or range, bad digests, or a grown disk with new positions missing
    (strictly increasing positions below ``entries``: all new ones are there iff their count is
    ``entries - old``)."""
    prev = -1
    grown = 0
    for pos, digest in changes:
        if not prev < pos < entries:
            raise error(f"change position {pos} out of order or outside the {entries} entries")
        if len(digest) != DIGEST_SIZE:
            raise error(f"change at position {pos}: digest must be 32 bytes")
        buf[pos * DIGEST_SIZE : (pos + 1) * DIGEST_SIZE] = digest
        if pos >= old:
            grown += 1
        prev = pos
    if grown != max(0, entries - old):
        raise error(f"the disk grew to {entries} entries but not every new position is given")


@dataclass(frozen=True, slots=True)
class IndexFile:
    """One decoded index file. ``body`` is the uncompressed body (digests for a full file,
    the change records for a delta); ``entries`` is the entry count of the index it describes.
    """

    kind: int
    chunk_size: int
    disk_size: int
    entries: int
    base_checksum: bytes
    body: bytes

    @classmethod
    def full(cls, index: Index) -> IndexFile:
        return cls(
            KIND_FULL, index.chunk_size, index.disk_size, len(index), ZERO_DIGEST, index.digests
        )

    @classmethod
    def delta(
        cls, index: Index, base: Index, changes: list[tuple[int, bytes]] | None = None
    ) -> IndexFile:
        """A delta that turns ``base`` into ``index`` (pass ``changes`` when already known)."""
        if changes is None:
            changes = index.changes_from(base)
        pack = _RECORD.pack
        body = b"".join([_COUNT.pack(len(changes)), *(pack(p, d) for p, d in changes)])
        return cls(
            KIND_DELTA, index.chunk_size, index.disk_size, len(index), base.checksum_raw(), body
        )

    @property
    def is_full(self) -> bool:
        return self.kind == KIND_FULL

    @property
    def base_checksum_hex(self) -> str | None:
        """Checksum of the index a delta applies to; ``None`` for a full file."""
        return None if self.kind == KIND_FULL else self.base_checksum.hex()

    @property
    def change_count(self) -> int:
        return 0 if self.kind == KIND_FULL else _COUNT.unpack_from(self.body)[0]

    def changes(self) -> list[tuple[int, bytes]]:
        """The delta's ``(position, digest)`` records (empty for a full file)."""
        if self.kind == KIND_FULL:
            return []
        return list(_RECORD.iter_unpack(memoryview(self.body)[_COUNT.size :]))

    def to_index(self) -> Index:
        """The index of a full file (a delta needs its base: use :func:`materialize`)."""
        if self.kind != KIND_FULL:
            raise ValueError("a delta index file needs its base chain: use materialize()")
        return Index._trusted(self.chunk_size, self.disk_size, self.body)


def plan_index_file(index: Index, base: Index | None, base_depth: int) -> tuple[IndexFile, int]:
    """Choose how to store ``index``: a delta of ``base`` when fewer than 25 % of the entries
    changed and the base's chain holds fewer than 16 deltas (``base_depth``: 0 when the base is
    stored in full), else a full file. Returns the file and its own chain depth."""
    if (
        base is not None
        and base_depth < DELTA_MAX_DEPTH
        and base.chunk_size == index.chunk_size
        and len(index)
    ):
        # "fewer than 25 %": at most ceil(0.25 * n) - 1 changes.
        limit = math.ceil(DELTA_MAX_FRACTION * len(index)) - 1
        changes = index._changes(base, limit)
        if changes is not None:
            return IndexFile.delta(index, base, changes), base_depth + 1
    return IndexFile.full(index), 0


def encode_index_file(index_file: IndexFile, *, level: int = 3) -> bytes:
    """Serialize an :class:`IndexFile` (body compressed with zstd, sha256 trailer)."""
    f = index_file
    frame = _compressor(level).compress(f.body)
    header = _HEADER.pack(
        FILE_MAGIC, f.kind, f.chunk_size, f.disk_size, f.entries, f.base_checksum, len(frame)
    )
    trailer = hashlib.sha256(header)
    trailer.update(frame)
    return b"".join((header, frame, trailer.digest()))


def decode_index_file(data: bytes | memoryview) -> IndexFile:
    """Parse and fully verify an index file: trailer checksum, header fields, body size and
    (for a delta) that positions are strictly increasing and inside the index. Any problem is
    an :class:`IndexCorrupt` with a message saying what is wrong."""
    view = memoryview(data)
    if len(view) < _HEADER.size + _TRAILER_SIZE:
        raise IndexCorrupt(f"truncated index file ({len(view)} bytes)")
    if bytes(view[:8]) != FILE_MAGIC:
        raise IndexCorrupt("not an index file (bad magic)")
    if hashlib.sha256(view[:-_TRAILER_SIZE]).digest() != view[-_TRAILER_SIZE:]:
        raise IndexCorrupt("index file checksum mismatch (damaged or truncated)")
    _, kind, chunk_size, disk_size, entries, base_checksum, body_len = _HEADER.unpack_from(view)
    if kind not in (KIND_FULL, KIND_DELTA):
        raise IndexCorrupt(f"unknown index file kind {kind}")
    try:
        check_chunk_size(chunk_size)
    except ValueError as exc:
        raise IndexCorrupt(str(exc)) from None
    if entries != entry_count(chunk_size, disk_size) or entries > MAX_ENTRIES:
        raise IndexCorrupt(f"{entries} entries does not fit disk size {disk_size}")
    if body_len != len(view) - _HEADER.size - _TRAILER_SIZE:
        raise IndexCorrupt("body length does not match the file size")
    frame = view[_HEADER.size : -_TRAILER_SIZE]
    if kind == KIND_FULL:
        if base_checksum != ZERO_DIGEST:
            raise IndexCorrupt("a full index file must not name a base")
        limit = entries * DIGEST_SIZE
    else:
        limit = _COUNT.size + entries * _RECORD.size
    try:
        body = decompress_bounded(frame, limit)
    except BlobCorrupt as exc:
        raise IndexCorrupt(f"index body: {exc}") from None
    if kind == KIND_FULL:
        if len(body) != limit:
            raise IndexCorrupt(f"full index body is {len(body)} bytes, expected {limit}")
    else:
        _check_delta_body(body, entries)
    return IndexFile(kind, chunk_size, disk_size, entries, base_checksum, body)


def _check_delta_body(body: bytes, entries: int) -> None:
    if len(body) < _COUNT.size:
        raise IndexCorrupt("delta body too short")
    (n,) = _COUNT.unpack_from(body)
    if n > entries or len(body) != _COUNT.size + n * _RECORD.size:
        raise IndexCorrupt(f"delta body size does not match its {n} records")
    prev = -1
    for pos, _ in _RECORD.iter_unpack(memoryview(body)[_COUNT.size :]):
        if not prev < pos < entries:
            raise IndexCorrupt(f"delta position {pos} out of order or beyond {entries} entries")
        prev = pos


def materialize(chain: list[IndexFile], *, expected_checksum: str) -> Index:
    """Rebuild an index from its chain: a full file first, then deltas in order.

    Checks that every delta's base_checksum is the checksum of the index materialized so far,
    that chunk sizes agree, that a grown disk's new positions are all present, and finally that
    the result's checksum is ``expected_checksum`` (the one recorded with the snapshot) —
    ``IndexCorrupt`` otherwise. The expected checksum is mandatory on purpose: a restore must
    never stream a disk whose index it could not verify. Works on one mutable buffer, so a chain
    of 16 deltas over a 32 MiB index costs 16 checksum passes and no per-entry objects.
    """
    if not chain:
        raise IndexCorrupt("empty index chain")
    first = chain[0]
    if first.kind != KIND_FULL:
        raise IndexCorrupt("an index chain must start with a full index file")
    chunk_size, disk_size = first.chunk_size, first.disk_size
    buf = bytearray(first.body)
    for depth, delta in enumerate(chain[1:], start=1):
        if delta.kind != KIND_DELTA:
            raise IndexCorrupt(f"chain element {depth} is a full index; only deltas may follow")
        if delta.chunk_size != chunk_size:
            raise IndexCorrupt(f"chain element {depth} has another chunk size")
        if delta.base_checksum != _checksum_raw(chunk_size, disk_size, buf):
            raise IndexCorrupt(f"chain element {depth} is a delta of another index")
        old = len(buf) // DIGEST_SIZE
        if delta.entries > old:  # in place: no copy of the whole buffer per delta
            buf.extend(bytes((delta.entries - old) * DIGEST_SIZE))
        else:
            del buf[delta.entries * DIGEST_SIZE :]
        records = _RECORD.iter_unpack(memoryview(delta.body)[_COUNT.size :])
        try:
            _apply_changes(buf, records, old, delta.entries, IndexCorrupt)
        except IndexCorrupt as exc:
            raise IndexCorrupt(f"chain element {depth}: {exc}") from None
        disk_size = delta.disk_size
    index = Index._trusted(chunk_size, disk_size, bytes(buf))
    if index.checksum() != expected_checksum:
        raise IndexCorrupt("materialized index does not have the expected checksum")
    return index
