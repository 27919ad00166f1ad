"""Writes on snapshots that customers make from the snapshot pages."""

from django.db import transaction

from storage.models import Snapshot


def snapshot_set_protected(customer, snapshot: Snapshot, protected: bool) -> bool:
    """Protect a snapshot from pruning (or release it); True when the flag changed.

    The row is re-read locked inside the transaction, scoped to ``customer``: prune locks
    the same rows before it plans (``storage.services.prune.prune_disk``), so a snapshot
    protected while a prune runs is either seen as protected or protected after it —
    never deleted after this function returned. Another customer's snapshot is
    ``Snapshot.DoesNotExist``.
    """
    with transaction.atomic():
        locked = (
            Snapshot.objects.for_customer(customer)
            .select_for_update()
            .only("pk", "protected")
            .get(pk=snapshot.pk)
        )
        changed = locked.protected != bool(protected)
        if changed:
            Snapshot.objects.for_customer(customer).filter(pk=locked.pk).update(
                protected=bool(protected)
            )
    snapshot.protected = bool(protected)
    return changed
