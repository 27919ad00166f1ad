"""The upload protocol: open a session for a disk, find missing chunks, upload, commit.

A snapshot becomes visible only through ``session_commit``, in one transaction that also
checks every chunk it references is in the customer's store. An interrupted upload resumes:
opening a session for a disk that has one open returns that session, and chunks stored before
the interruption are reported present by the missing-query.
"""

from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from protection.models import Disk, Machine
from storage.models import (
    CHANGE_ID_MAX,
    Consistency,
    SessionState,
    Snapshot,
    SnapshotState,
    UploadSession,
)
from storage.store.index import ZERO_DIGEST, Index, entry_count

from .chunks import UploadEntry, UploadResult, store_chunks, touch_present
from .context import customer_store
from .indexes import load_index, nonzero_bytes, save_index, zero_entries
from .repair import recheck_failed_snapshots


class SessionError(ValidationError):
    """A protocol request that cannot be honoured; the message says why."""


class CommitMissingChunks(SessionError):
    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(
            f"{len(missing)} referenced chunk(s) are not in the store: upload them, then commit "
            f"again.",
            code="missing_chunks",
        )


def _check_hex_digests(digests) -> list[str]:
    if not isinstance(digests, list):
        raise SessionError("digests must be a list of hex SHA-256 digests.")
    bad = [d for d in digests if not (isinstance(d, str) and _is_hex64(d))]
    if bad:
        shown = ", ".join(repr(d)[:70] for d in bad[:5])
        raise SessionError(f"Not a lowercase hex SHA-256 digest: {shown}.", code="bad_digest")
    return digests


def _is_hex64(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def latest_complete_snapshot(customer, disk) -> Snapshot | None:
    return (
        Snapshot.objects.for_customer(customer)
        .filter(disk=disk, state=SnapshotState.COMPLETE)
        .select_related("index")
        .order_by("-created_at")
        .first()
    )


def session_open(
    customer,
    machine: Machine,
    disk: Disk,
    *,
    taken_at=None,
    job=None,
    consistency: str = "",
    change_id: str = "",
) -> tuple[UploadSession, bool]:
    """The open session for ``disk``: a new one, or the interrupted one (``resumed``).

    ``taken_at``, ``consistency`` and ``change_id`` describe the point in time the agent
    reads (its source snapshot). An agent that resumes with a new source snapshot (VMware:
    the crashed job's snapshot was removed, a new one taken) names the new point in time,
    and the resumed session takes it: its chunks are content-addressed, so what was uploaded
    stays useful, and the snapshot committed says when its data is from."""
    if consistency not in ("", *Consistency.values):
        raise SessionError(f"Unknown consistency {consistency!r}.")
    if len(change_id) > CHANGE_ID_MAX:
        raise SessionError(f"change_id is longer than {CHANGE_ID_MAX} characters.")
    if machine.customer_id != customer.pk or disk.customer_id != customer.pk:
        raise SessionError("Unknown machine or disk.", code="not_found")
    if disk.machine_id != machine.pk:
        raise SessionError(f"Disk {disk.key} does not belong to machine {machine.name}.")
    try:
        with transaction.atomic():
            # The disk row lock orders this against prune (which takes it too): the base
            # chosen here cannot be deleted before the session that pins it exists.
            Disk.objects.for_customer(customer).select_for_update().get(pk=disk.pk)
            existing = (
                UploadSession.objects.for_customer(customer)
                .filter(disk=disk, state=SessionState.OPEN)
                .first()
            )
            if existing is not None:
                # A crashed or cancelled job's session is resumed by the next job: the
                # chunks it uploaded are kept, and the snapshot belongs to the new job.
                existing.last_activity_at = timezone.now()
                existing.job = job or existing.job
                fields = ["last_activity_at", "job"]
                if taken_at is not None:
                    existing.taken_at = taken_at
                    existing.consistency, existing.change_id = consistency, change_id
                    fields += ["taken_at", "consistency", "change_id"]
                existing.save(update_fields=fields)
                return existing, True
            base = latest_complete_snapshot(customer, disk)
            chunk_size = base.chunk_size if base else settings.STORE_CHUNK_SIZE
            now = timezone.now()
            session = UploadSession.objects.create(
                customer=customer,
                machine=machine,
                disk=disk,
                base=base,
                chunk_size=chunk_size,
                taken_at=taken_at or now,
                consistency=consistency,
                change_id=change_id,
                started_at=now,
                last_activity_at=now,
                job=job,
            )
    except IntegrityError:  # two opens raced: the other one won, resume it
        session = UploadSession.objects.for_customer(customer).get(
            disk=disk, state=SessionState.OPEN
        )
        return session, True
    return session, False


def _require_open(session: UploadSession) -> None:
    if session.state != SessionState.OPEN:
        raise SessionError(
            f"This upload session is {session.get_state_display().lower()}; open a new one.",
            code="session_closed",
        )


def session_missing(session: UploadSession, digests: list[str]) -> list[str]:
    """Which of ``digests`` the customer's store lacks (in the order asked)."""
    _require_open(session)
    _check_hex_digests(digests)
    if len(digests) > settings.STORE_MAX_DIGESTS_PER_QUERY:
        raise SessionError(
            f"At most {settings.STORE_MAX_DIGESTS_PER_QUERY} digests per query.",
            code="too_many",
        )
    present = touch_present(session.customer, digests)
    _record_activity(session)
    seen: set[str] = set()
    missing = []
    for digest in digests:
        if digest not in present and digest not in seen and digest != "0" * 64:
            seen.add(digest)
            missing.append(digest)
    return missing


def session_upload(session: UploadSession, entries: list[UploadEntry]) -> UploadResult:
    _require_open(session)
    store = customer_store(session.customer)
    result = store_chunks(session.customer, store, entries, max_chunk=session.chunk_size)
    # F() expressions: agents upload batches of one session in parallel requests.
    UploadSession.objects.for_customer(session.customer).filter(pk=session.pk).update(
        chunks_uploaded=F("chunks_uploaded") + result.stored,
        bytes_received=F("bytes_received") + result.received_bytes,
        stored_bytes_added=F("stored_bytes_added") + result.stored_bytes,
        last_activity_at=timezone.now(),
    )
    session.refresh_from_db()
    if result.repaired:
        recheck_failed_snapshots(session.customer)
    return result


# Activity only feeds the expiry of silent sessions (hours): one write a minute is plenty, and
# a missing-query should not pay an UPDATE (a third of its time on small queries).
ACTIVITY_RESOLUTION = timedelta(minutes=1)


def _record_activity(session: UploadSession) -> None:
    now = timezone.now()
    if now - session.last_activity_at < ACTIVITY_RESOLUTION:
        return
    session.last_activity_at = now
    session.save(update_fields=["last_activity_at"])


@dataclass(frozen=True)
class CommitRequest:
    """Either ``digests`` (the full index) or ``base_checksum`` + ``changes``."""

    disk_size: int
    digests: bytes | None = None
    base_checksum: str | None = None
    changes: list[tuple[int, bytes]] | None = None


def _build_index(session: UploadSession, store, request: CommitRequest):
    """The new index, the base's index (or None), and the digests the commit vouches for."""
    base = session.base
    base_index = load_index(store, base.index) if base else None
    if request.digests is not None:
        index = Index(session.chunk_size, request.disk_size, request.digests)
        return index, base_index, index.referenced()
    if base is None:
        raise SessionError(
            "This session has no base snapshot: commit the full index.", code="no_base"
        )
    if request.base_checksum != base.index_checksum:
        raise SessionError(
            "base_checksum does not match the base snapshot's index: fetch the base index "
            "again, or commit the full index.",
            code="base_mismatch",
        )
    changes = request.changes or []
    # Every position of a grown disk must be listed: checked before Index.apply allocates
    # the new size, so a huge disk_size with a short change list costs nothing.
    grown = entry_count(base_index.chunk_size, request.disk_size) - len(base_index)
    if grown > len(changes):
        raise SessionError(
            f"The disk grew by {grown} entries but only {len(changes)} changes were sent: "
            "every new position must be listed.",
            code="bad_index",
        )
    index = Index.apply(base_index, request.disk_size, changes)
    # Unchanged entries are the base's chunks, which the base snapshot keeps alive (it
    # cannot be pruned while this session is open).
    referenced = {digest for _, digest in request.changes or []}
    if request.disk_size > base_index.disk_size:
        referenced.update(index[i] for i in range(len(base_index), len(index)))
    return index, base_index, referenced


def session_commit(session: UploadSession, request: CommitRequest) -> Snapshot:
    """Create the snapshot: all referenced chunks present, index written, one transaction."""
    _require_open(session)
    if request.disk_size < 0:
        raise SessionError("disk_size must be 0 or more.")
    customer = session.customer
    store = customer_store(customer)
    try:
        index, base_index, referenced = _build_index(session, store, request)
    except ValueError as exc:  # malformed index / changes from the library
        raise SessionError(str(exc), code="bad_index") from None
    referenced.discard(ZERO_DIGEST)
    wanted = {d.hex() for d in referenced}
    index_row = save_index(
        customer,
        store,
        index,
        base_file=session.base.index if session.base else None,
        base_index=base_index,
    )
    zero = zero_entries(index)
    try:
        snapshot = _commit_snapshot(session, index, index_row, wanted, zero)
    except Exception:
        # The index object was written before the transaction and nothing refers to it:
        # remove it now rather than leave it to the garbage collector (which still would).
        with suppress(Exception):
            store.backend.delete_object(store.namespace, index_row.object_name)
        raise
    session.refresh_from_db()
    return snapshot


def _commit_snapshot(session, index: Index, index_row, wanted: set[str], zero: int) -> Snapshot:
    customer = session.customer
    with transaction.atomic():
        locked = UploadSession.objects.for_customer(customer).select_for_update().get(pk=session.pk)
        _require_open(locked)
        present = touch_present(customer, wanted)
        missing = sorted(wanted - present)
        if missing:
            raise CommitMissingChunks(missing)
        index_row.save()
        snapshot = Snapshot.objects.create(
            customer=customer,
            machine=session.machine,
            disk=session.disk,
            created_at=session.taken_at,
            committed_at=timezone.now(),
            base=session.base,
            disk_size=index.disk_size,
            chunk_size=index.chunk_size,
            consistency=locked.consistency,
            change_id=locked.change_id,
            index=index_row,
            index_checksum=index_row.checksum,
            state=SnapshotState.COMPLETE,
            job_id=session.job_id,
            logical_bytes=nonzero_bytes(index, zero),
            chunk_count=len(index),
            zero_chunks=zero,
            new_chunks=locked.chunks_uploaded,
            new_stored_bytes=locked.stored_bytes_added,
        )
        locked.state = SessionState.COMMITTED
        locked.snapshot = snapshot
        locked.last_activity_at = timezone.now()
        locked.save(update_fields=["state", "snapshot", "last_activity_at"])
    return snapshot


def session_abort(session: UploadSession, reason: str = "") -> None:
    """Close the session without a snapshot; its uploaded chunks age out through GC."""
    with transaction.atomic():
        locked = (
            UploadSession.objects.for_customer(session.customer)
            .select_for_update()
            .get(pk=session.pk)
        )
        _require_open(locked)
        locked.state = SessionState.ABORTED
        locked.error = reason[:500]
        locked.save(update_fields=["state", "error"])
    session.refresh_from_db()
