"""Reads of the storage app: snapshot lists and usage accounting.

Two byte figures describe a store, and their quotient is what deduplication buys:

* **logical bytes** — the non-zero bytes of every point in time kept: what restoring each
  snapshot would read from the store (zero chunks are never stored, so they don't count);
* **stored bytes** — the bytes the chunk store holds for the customer (compressed,
  encrypted blobs), after deduplication across all snapshots and machines.

Everything here is computed from columns the commit already wrote (``Snapshot.logical_bytes``,
``Snapshot.new_stored_bytes``, ``Chunk.stored_size``), by aggregate queries: no index file is
read and no query runs per snapshot or per machine.
"""

from django.db.models import Count, Max, Q, Sum

from protection.models import Machine

from .models import Chunk, IndexFile, Snapshot, SnapshotState


def dedup_ratio(logical: int, stored: int) -> float | None:
    """Logical ÷ stored bytes; None when nothing is stored (no ratio to speak of)."""
    return logical / stored if stored else None


def customer_usage(customer) -> dict:
    """The customer's store as a whole (dashboard and usage page).

    ``stored_bytes`` and ``chunk_count`` count the chunks the store holds now, leaving out
    chunks the garbage collector is sweeping (they are gone for every reader already).
    ``index_bytes`` is the size of all index files, deltas included — the metadata overhead.
    """
    snapshots = Snapshot.objects.for_customer(customer).aggregate(
        logical=Sum("logical_bytes"), count=Count("pk")
    )
    chunks = (
        Chunk.objects.for_customer(customer)
        .filter(sweeping=False)
        .aggregate(stored=Sum("stored_size"), count=Count("pk"))
    )
    indexes = IndexFile.objects.for_customer(customer).aggregate(stored=Sum("stored_bytes"))
    logical, stored = snapshots["logical"] or 0, chunks["stored"] or 0
    return {
        "logical_bytes": logical,
        "stored_bytes": stored,
        "chunk_count": chunks["count"],
        "snapshot_count": snapshots["count"],
        "index_bytes": indexes["stored"] or 0,
        "dedup_ratio": dedup_ratio(logical, stored),
    }


def _machine_figures(logical, stored, chunks, count, index_bytes) -> dict:
    logical, stored = logical or 0, stored or 0
    return {
        "logical_bytes": logical,
        "stored_bytes": stored,
        "chunk_count": chunks or 0,
        "snapshot_count": count or 0,
        "index_bytes": index_bytes or 0,
        "dedup_ratio": dedup_ratio(logical, stored),
    }


def machine_usage(customer, machine) -> dict:
    """One machine's share of the customer's store, with the keys of ``customer_usage``.

    ``logical_bytes`` sums the machine's snapshots. ``stored_bytes`` and ``chunk_count``
    are *attributed*: the stored bytes of the chunks the machine's own replications added
    to the store (``Snapshot.new_stored_bytes``). A chunk shared by several machines counts
    for the machine that uploaded it first; a machine that only references chunks others
    uploaded has 0 stored bytes (and no ratio). The machines' figures add up to what the
    store received, not to what it holds today: pruning the snapshot that first uploaded a
    chunk drops it from the attribution while later snapshots may still keep the chunk,
    and garbage collection frees chunks without touching snapshots.
    """
    figures = (
        Snapshot.objects.for_customer(customer)
        .filter(machine=machine)
        .aggregate(
            logical=Sum("logical_bytes"),
            stored=Sum("new_stored_bytes"),
            chunks=Sum("new_chunks"),
            count=Count("pk"),
            index_bytes=Sum("index__stored_bytes"),
        )
    )
    return _machine_figures(**figures)


def machine_usage_table(customer) -> list[Machine]:
    """Every machine of the customer that has snapshots, with its usage, largest first.

    One query (aggregates over the machines' snapshots); each machine carries ``usage``
    with the keys of ``machine_usage`` and ``last_snapshot_at``.
    """
    machines = (
        Machine.objects.for_customer(customer)
        .annotate(
            _logical=Sum("snapshots__logical_bytes"),
            _stored=Sum("snapshots__new_stored_bytes"),
            _chunks=Sum("snapshots__new_chunks"),
            _count=Count("snapshots"),
            _index_bytes=Sum("snapshots__index__stored_bytes"),
            last_snapshot_at=Max("snapshots__created_at"),
        )
        .filter(_count__gt=0)
        .select_related("group")
        .order_by("-_stored", "-_logical", "name")
    )
    rows = list(machines)
    for machine in rows:
        machine.usage = _machine_figures(
            machine._logical,
            machine._stored,
            machine._chunks,
            machine._count,
            machine._index_bytes,
        )
    return rows


def machine_snapshots(customer, machine):
    """The machine's snapshots grouped by disk (key order), newest first within a disk,
    with everything the snapshot list shows joined in (disk, index, base)."""
    return (
        Snapshot.objects.for_customer(customer)
        .filter(machine=machine)
        .select_related("disk", "index", "base")
        # committed_at and pk make the order total: pages never repeat or skip a row.
        .order_by("disk__key", "disk_id", "-created_at", "-committed_at", "pk")
    )


def machine_disk_counts(customer, machine) -> dict[int, dict]:
    """Per disk of the machine: how many points in time it has, and how many are protected
    or failed verification (for the headings of the snapshot list)."""
    rows = (
        Snapshot.objects.for_customer(customer)
        .filter(machine=machine)
        .values("disk_id")
        .annotate(
            count=Count("pk"),
            protected=Count("pk", filter=Q(protected=True)),
            failed=Count("pk", filter=Q(state=SnapshotState.FAILED)),
        )
        .order_by()
    )
    return {row["disk_id"]: row for row in rows}


def latest_change_point(customer, machine) -> Snapshot | None:
    """The machine's newest snapshot that carries a platform change id (VMware CBT, or the
    oVirt snapshot kept as the base): the point its next incremental asks the platform
    about. None before the first one."""
    return (
        Snapshot.objects.for_customer(customer)
        .filter(machine=machine)
        .exclude(change_id="")
        .order_by("-created_at", "-committed_at")
        .first()
    )
