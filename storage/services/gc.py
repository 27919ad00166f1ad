"""Garbage collection: mark-and-sweep over the chunk catalog, safe beside live uploads.

The rules that make it safe (each step is its own short transaction, so a crash anywhere
leaves a state the next run completes):

* **Cutoff** = the older of (start − grace) and the start of the customer's oldest open upload
  session. Everything an open session touched or uploaded is newer than the cutoff.
* **Mark**: every chunk referenced by any snapshot (any state) gets ``last_seen_at = now``
  (never moved backwards: two collectors may overlap).
* **Claim**: chunks unseen since the cutoff are flagged ``sweeping`` (committed). From then on
  the missing-query reports them missing and does not touch them; an upload of the same
  digest *revives* the row (rewrites the blob, clears the flag) under a row lock.
* **Sweep**: under a row lock, still-``sweeping`` rows have their blob deleted, then the row.
  An upload waiting on that lock finds no row afterwards and stores a fresh blob.
* **Index files** no snapshot and no delta uses are deleted, then orphans in the backend
  (objects without a catalog row, left by a crash between writing and committing) once they
  are older than the cutoff.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from storage.models import (
    Chunk,
    CustomerStore,
    IndexFile,
    MaintenanceKind,
    MaintenanceRun,
    SessionState,
    Snapshot,
    UploadSession,
)

from .context import StoreHandle, customer_store
from .indexes import load_index, referenced_hex

BATCH = 500


@dataclass
class GcStats:
    marked: int = 0
    claimed: int = 0
    swept_chunks: int = 0
    freed_bytes: int = 0
    index_files_deleted: int = 0
    orphan_objects_deleted: int = 0
    orphan_chunks_deleted: int = 0
    sessions_expired: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: "GcStats") -> None:
        for name, value in vars(other).items():
            if name == "errors":
                self.errors.extend(value)
            else:
                setattr(self, name, getattr(self, name) + value)


class CustomerGc:
    """One customer's collection, step by step (tests interleave the steps with uploads)."""

    def __init__(self, customer, *, grace: timedelta, now: datetime | None = None, batch=BATCH):
        self.customer = customer
        self.started = now or timezone.now()
        self.grace = grace
        self.batch = batch
        self.stats = GcStats()
        self.store: StoreHandle = customer_store(customer)
        self.cutoff: datetime | None = None

    # -- steps -------------------------------------------------------------------------
    def expire_sessions(self) -> None:
        """Open sessions silent for too long stop holding back the collection."""
        limit = self.started - timedelta(hours=settings.STORE_SESSION_EXPIRY_HOURS)
        self.stats.sessions_expired += (
            UploadSession.objects.for_customer(self.customer)
            .filter(state=SessionState.OPEN, last_activity_at__lt=limit)
            .update(state=SessionState.ABORTED, error="expired: no activity")
        )

    def compute_cutoff(self) -> datetime:
        oldest_open = (
            UploadSession.objects.for_customer(self.customer)
            .filter(state=SessionState.OPEN)
            .aggregate(oldest=Min("started_at"))["oldest"]
        )
        cutoff = self.started - self.grace
        if oldest_open is not None and oldest_open < cutoff:
            cutoff = oldest_open
        self.cutoff = cutoff
        return cutoff

    def mark(self) -> None:
        """Touch every chunk any snapshot references (read in one consistent query)."""
        snapshots = list(Snapshot.objects.for_customer(self.customer).select_related("index"))
        by_index: dict = {}
        for snapshot in snapshots:
            by_index.setdefault(snapshot.index_id, snapshot.index)
        for index_file in by_index.values():
            digests = sorted(referenced_hex(load_index(self.store, index_file, cached=False)))
            for start in range(0, len(digests), self.batch):
                batch = digests[start : start + self.batch]
                now = timezone.now()
                # Only forward: a slower collector that started earlier must not pull a
                # mark back below the cutoff of one that started later.
                self.stats.marked += (
                    Chunk.objects.for_customer(self.customer)
                    .filter(digest__in=batch, last_seen_at__lt=now)
                    .update(last_seen_at=now)
                )

    def claim(self) -> list[int]:
        """Flag unseen chunks as sweeping; returns the ids to sweep (incl. earlier claims)."""
        assert self.cutoff is not None, "compute_cutoff() first"
        candidates = list(
            Chunk.objects.for_customer(self.customer)
            .filter(Q(last_seen_at__lt=self.cutoff, sweeping=False) | Q(sweeping=True))
            .values_list("pk", flat=True)
        )
        for start in range(0, len(candidates), self.batch):
            batch = candidates[start : start + self.batch]
            with transaction.atomic():
                self.stats.claimed += (
                    Chunk.objects.for_customer(self.customer)
                    .filter(pk__in=batch, last_seen_at__lt=self.cutoff, sweeping=False)
                    .update(sweeping=True)
                )
        return candidates

    def sweep(self, ids: list[int]) -> None:
        for start in range(0, len(ids), self.batch):
            self.sweep_batch(ids[start : start + self.batch])

    def sweep_batch(self, ids: list[int]) -> None:
        with transaction.atomic():
            rows = list(
                Chunk.objects.for_customer(self.customer)
                .select_for_update()
                .filter(pk__in=ids, sweeping=True)
            )
            for row in rows:
                self.store.backend.delete_chunk(self.store.namespace, row.digest)
                self.stats.freed_bytes += row.stored_size
            Chunk.objects.for_customer(self.customer).filter(
                pk__in=[row.pk for row in rows], sweeping=True
            ).delete()
            self.stats.swept_chunks += len(rows)

    def delete_unused_index_files(self) -> None:
        while True:
            unused = list(
                IndexFile.objects.for_customer(self.customer).filter(
                    snapshots__isnull=True, children__isnull=True
                )
            )
            if not unused:
                return
            for index_file in unused:
                with transaction.atomic():
                    deleted, _ = (
                        IndexFile.objects.for_customer(self.customer)
                        .filter(pk=index_file.pk, snapshots__isnull=True, children__isnull=True)
                        .delete()
                    )
                if deleted:
                    self.store.backend.delete_object(self.store.namespace, index_file.object_name)
                    self.stats.index_files_deleted += 1

    def delete_orphans(self) -> None:
        """Backend objects without catalog rows, older than the cutoff (crash leftovers)."""
        cutoff_ts = self.cutoff.timestamp()
        known_indexes = {
            f"indexes/{pk}.idx"
            for pk in IndexFile.objects.for_customer(self.customer).values_list("pk", flat=True)
        }
        for stat in self.store.backend.iter_objects(self.store.namespace, "indexes/"):
            if stat.name not in known_indexes and stat.mtime < cutoff_ts:
                self.store.backend.delete_object(self.store.namespace, stat.name)
                self.stats.orphan_objects_deleted += 1
        old_blobs = [
            stat.digest_hex
            for stat in self.store.backend.iter_chunks(self.store.namespace)
            if stat.mtime < cutoff_ts
        ]
        for start in range(0, len(old_blobs), self.batch):
            batch = old_blobs[start : start + self.batch]
            with transaction.atomic():
                known = set(
                    Chunk.objects.for_customer(self.customer)
                    .select_for_update()
                    .filter(digest__in=batch)
                    .values_list("digest", flat=True)
                )
                for digest in batch:
                    if digest not in known:
                        self.store.backend.delete_chunk(self.store.namespace, digest)
                        self.stats.orphan_chunks_deleted += 1

    def run(self) -> GcStats:
        self.expire_sessions()
        self.compute_cutoff()
        self.mark()
        self.sweep(self.claim())
        self.delete_unused_index_files()
        self.delete_orphans()
        return self.stats


def collect_garbage(*, grace_hours: float | None = None, customer=None) -> dict:
    """Collect every customer's store (or one); returns the JSON-able summary."""
    grace = timedelta(hours=settings.STORE_GC_GRACE_HOURS if grace_hours is None else grace_hours)
    started = time.monotonic()
    stores = CustomerStore.objects.select_related("customer").order_by("pk")
    if customer is not None:
        stores = stores.filter(customer=customer)
    total = GcStats()
    customers = 0
    for store in stores:
        run = MaintenanceRun.objects.create(kind=MaintenanceKind.GC, customer=store.customer)
        gc = CustomerGc(store.customer, grace=grace)
        try:
            stats = gc.run()
        except Exception as exc:  # recorded, then the next customer is collected
            stats = gc.stats
            stats.errors.append(f"{store.customer.slug}: {type(exc).__name__}: {exc}")
        run.finished_at = timezone.now()
        run.ok = not stats.errors
        run.summary = vars(stats)
        run.save()
        total.add(stats)
        customers += 1
    summary = {"customers": customers, **vars(total)}
    summary["duration_seconds"] = round(time.monotonic() - started, 3)
    summary["grace_hours"] = grace.total_seconds() / 3600
    return summary
