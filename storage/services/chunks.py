"""The chunk catalog: which chunks a customer has, safe beside garbage collection.

Every function here keeps one invariant with ``storage.services.gc``: a catalog row that is
not ``sweeping`` always has its blob in the backend. Presence is established by *touching*
rows (``last_seen_at = now``) inside a transaction, which a concurrent sweep (deleting only
rows unseen since its cutoff) can never undo.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from storage.models import Chunk, QuarantinedChunk
from storage.store.blob import decompress_bounded, is_zero
from storage.store.errors import BlobCorrupt
from storage.store.index import ZERO_DIGEST

from .context import StoreHandle

ZERO_DIGEST_HEX = ZERO_DIGEST.hex()
QUERY_BATCH = 900  # below SQLite's default host-parameter limit, with room for the scope


def present_digests(customer, digests: Iterable[str], *, touch: bool = False) -> set[str]:
    """Those of ``digests`` the customer's store has; with ``touch``, also mark them seen now
    (in one transaction, so a concurrent sweep cannot take them afterwards).

    Sweeping rows count as missing and are never touched: their blob may be gone already.
    """
    wanted = sorted(set(digests) - {ZERO_DIGEST_HEX})
    present: set[str] = set()
    now = timezone.now()
    with transaction.atomic():
        for start in range(0, len(wanted), QUERY_BATCH):
            batch = wanted[start : start + QUERY_BATCH]
            rows = Chunk.objects.for_customer(customer).filter(digest__in=batch, sweeping=False)
            if touch:
                rows.update(last_seen_at=now)
            present.update(rows.values_list("digest", flat=True))
    return present


def touch_present(customer, digests: Iterable[str]) -> set[str]:
    """Mark the given digests as seen now; return those the customer's store has."""
    return present_digests(customer, digests, touch=True)


@dataclass
class UploadResult:
    stored: int = 0
    duplicates: int = 0
    stored_bytes: int = 0
    received_bytes: int = 0
    failed: list[dict] = field(default_factory=list)
    revived: list[str] = field(default_factory=list)
    repaired: int = 0  # quarantined digests this batch brought back


@dataclass(frozen=True)
class UploadEntry:
    digest_hex: str
    plain_size: int
    frame: bytes


def _verified_plain(entry: UploadEntry, max_chunk: int) -> tuple[bytes | None, str]:
    """Decompress and check an uploaded chunk; (plain, "") or (None, reason)."""
    if entry.plain_size <= 0 or entry.plain_size > max_chunk:
        return None, f"length {entry.plain_size} is outside 1..{max_chunk}"
    try:
        plain = decompress_bounded(entry.frame, entry.plain_size)
    except BlobCorrupt as exc:
        return None, f"not a valid zstd frame: {exc}"
    if len(plain) != entry.plain_size:
        return None, f"length {len(plain)} differs from the declared {entry.plain_size}"
    if hashlib.sha256(plain).hexdigest() != entry.digest_hex:
        return None, "SHA-256 of the data differs from the digest"
    # is_zero compares with a cached zero buffer (memcmp, stops at the first non-zero byte);
    # plain.strip(b"\0") copied every chunk: ~10 % of the server's verify-and-store CPU.
    if entry.digest_hex == ZERO_DIGEST_HEX or is_zero(plain):
        return None, "all-zero chunks are never stored: mark them in the index"
    return plain, ""


def store_chunks(
    customer, store: StoreHandle, entries: list[UploadEntry], max_chunk: int
) -> UploadResult:
    """Verify and store a batch of uploaded chunks.

    A failing entry stores nothing and is reported; the others are stored. Rows are locked
    (``select_for_update``) before blobs are written, so a sweep in progress either finished
    deleting the old blob first or finds the row revived and leaves it alone.
    """
    result = UploadResult()
    verified: dict[str, tuple[bytes, bytes]] = {}
    for entry in entries:
        result.received_bytes += len(entry.frame)
        plain, problem = _verified_plain(entry, max_chunk)
        if plain is None:
            result.failed.append({"digest": entry.digest_hex, "error": problem})
        else:
            verified[entry.digest_hex] = (plain, entry.frame)
    if not verified:
        return result
    now = timezone.now()
    with transaction.atomic():
        existing = {
            row.digest: row
            for row in Chunk.objects.for_customer(customer)
            .select_for_update()
            .filter(digest__in=list(verified))
        }
        new_rows = []
        for digest_hex, (plain, frame) in verified.items():
            row = existing.get(digest_hex)
            if row is not None and not row.sweeping:
                result.duplicates += 1
                continue
            blob = store.encode_frame(bytes.fromhex(digest_hex), frame, plain)
            store.put_blob(digest_hex, blob)
            result.stored += 1
            result.stored_bytes += len(blob)
            if row is not None:  # revive a row the sweep had claimed
                row.sweeping = False
                row.stored_size = len(blob)
                row.last_seen_at = now
                row.save(update_fields=["sweeping", "stored_size", "last_seen_at"])
                result.revived.append(digest_hex)
            else:
                new_rows.append(
                    Chunk(
                        customer=customer,
                        digest=digest_hex,
                        plain_size=len(plain),
                        stored_size=len(blob),
                        created_at=now,
                        last_seen_at=now,
                    )
                )
        # Two sessions may upload the same new chunk at once: the second insert finds the
        # first one's row (same content, its own blob just rewritten) and keeps it.
        Chunk.objects.bulk_create(new_rows, ignore_conflicts=True)
        if existing:
            Chunk.objects.for_customer(customer).filter(
                digest__in=[d for d, r in existing.items() if not r.sweeping]
            ).update(last_seen_at=now)
        repaired = [row.digest for row in new_rows] + result.revived
        if repaired:
            result.repaired = (
                QuarantinedChunk.objects.for_customer(customer)
                .filter(digest__in=repaired, repaired_at__isnull=True)
                .update(repaired_at=now)
            )
    return result
