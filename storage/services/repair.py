"""Healing after verification found damage: once the missing chunks are back (agents
re-upload what the missing-query reports), snapshots marked failed become complete again."""

from storage.models import Snapshot, SnapshotState

from .chunks import present_digests
from .context import customer_store
from .indexes import load_index, referenced_hex


def missing_chunks_of(customer, store, snapshot: Snapshot) -> set[str]:
    """Digests ``snapshot`` references that the store lacks (or is sweeping)."""
    wanted = referenced_hex(load_index(store, snapshot.index))
    return wanted - present_digests(customer, wanted)


def recheck_failed_snapshots(customer) -> int:
    """Mark failed snapshots complete when every chunk they reference is present again.

    Called when an upload repaired a quarantined digest (verify records every damaged or
    missing digest as quarantined), not on every upload: reading the failed snapshots'
    indexes is not a cost the hot path should pay.
    """
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
