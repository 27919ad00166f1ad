"""Healing after verification found damage: once the missing chunks are back (agents
re-upload what the missing-query reports), snapshots marked failed become complete again."""

from storage.models import Chunk, Snapshot, SnapshotState

from .context import customer_store
from .indexes import load_index, referenced_hex

QUERY_BATCH = 900


def missing_chunks_of(customer, store, snapshot: Snapshot) -> set[str]:
    """Digests ``snapshot`` references that the store lacks (or is sweeping)."""
    index = load_index(store, snapshot.index)
    wanted = sorted(referenced_hex(index))
    present: set[str] = set()
    for start in range(0, len(wanted), QUERY_BATCH):
        batch = wanted[start : start + QUERY_BATCH]
        present.update(
            Chunk.objects.for_customer(customer)
            .filter(digest__in=batch, sweeping=False)
            .values_list("digest", flat=True)
        )
    return set(wanted) - present


def recheck_failed_snapshots(customer) -> int:
    """Mark failed snapshots complete when every chunk they reference is present again."""
    failed = list(
        Snapshot.objects.for_customer(customer)
        .filter(state=SnapshotState.FAILED)
        .select_related("index")
    )
    if not failed:
        return 0
    store = customer_store(customer)
    healed = [s.pk for s in failed if not missing_chunks_of(customer, store, s)]
    if healed:
        Snapshot.objects.for_customer(customer).filter(pk__in=healed).update(
            state=SnapshotState.COMPLETE
        )
    return len(healed)
