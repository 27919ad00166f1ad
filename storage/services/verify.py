"""Verification: re-read, decode and re-hash stored chunks; quarantine what is damaged.

A bad chunk (unreadable, corrupt, undecryptable, wrong digest, or gone) is moved out of the
address space, its catalog row deleted — so the next replication's missing-query reports it
missing and the agent uploads it again — and every snapshot referencing it is marked
*failed verification* until ``storage.services.repair`` sees all its chunks back.
"""

import contextlib
import random
import time
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from storage.models import (
    Chunk,
    CustomerStore,
    MaintenanceKind,
    MaintenanceRun,
    QuarantinedChunk,
    Snapshot,
    SnapshotState,
)
from storage.store.errors import NotFound, StoreError

from .context import customer_store
from .indexes import load_index, referenced_hex


def _references(customer, store) -> tuple[dict[str, set], list[Snapshot], list[str]]:
    """digest → snapshot ids, the snapshots, and problems reading their indexes."""
    users: dict[str, set] = defaultdict(set)
    problems = []
    snapshots = list(Snapshot.objects.for_customer(customer).select_related("index"))
    by_index = defaultdict(list)
    for snapshot in snapshots:
        by_index[snapshot.index_id].append(snapshot)
    for group in by_index.values():
        try:
            digests = referenced_hex(load_index(store, group[0].index, cached=False))
        except StoreError as exc:
            problems.append(f"index of snapshot {group[0].pk}: {exc}")
            for snapshot in group:
                users[f"index:{snapshot.index_id}"].add(snapshot.pk)
            continue
        ids = {snapshot.pk for snapshot in group}
        for digest in digests:
            users[digest].update(ids)
    return users, snapshots, problems


def _quarantine(customer, store, digest: str, reason: str) -> None:
    with transaction.atomic():
        row = Chunk.objects.for_customer(customer).select_for_update().filter(digest=digest).first()
        with contextlib.suppress(NotFound):  # nothing left to move: the row still goes
            store.backend.quarantine_chunk(store.namespace, digest, reason)
        if row is not None:
            row.delete()
        QuarantinedChunk.objects.create(customer=customer, digest=digest, reason=reason[:500])


def _record_missing(customer, digests: list[str]) -> None:
    """Referenced digests with no chunk at all are quarantine records too (once each), so the
    upload that brings one back marks it repaired and heals the snapshots."""
    open_records = (
        set(
            QuarantinedChunk.objects.for_customer(customer)
            .filter(digest__in=digests, repaired_at__isnull=True)
            .values_list("digest", flat=True)
        )
        if digests
        else set()
    )
    QuarantinedChunk.objects.bulk_create(
        QuarantinedChunk(customer=customer, digest=d, reason="missing from the store")
        for d in digests
        if d not in open_records
    )


def verify_customer(customer, *, sample_percent: float = 100.0, rng=None) -> dict:
    """Verify all (or a random ``sample_percent`` of the) chunks of one customer."""
    rng = rng or random.Random()
    store = customer_store(customer)
    users, snapshots, problems = _references(customer, store)
    rows = list(
        Chunk.objects.for_customer(customer)
        .filter(sweeping=False)
        .values_list("digest", "stored_size")
    )
    catalog = {digest for digest, _ in rows}
    if sample_percent < 100:
        count = max(1, round(len(rows) * sample_percent / 100)) if rows else 0
        rows = rng.sample(rows, count)
    bad: dict[str, str] = {}
    checked = checked_bytes = 0
    for digest, stored_size in rows:
        checked += 1
        checked_bytes += stored_size
        try:
            store.read_chunk(digest)
        except StoreError as exc:
            bad[digest] = f"{type(exc).__name__}: {exc}"
    for digest, reason in bad.items():
        _quarantine(customer, store, digest, reason)
    # Referenced but not in the catalog at all (lost before this run, or sweeping).
    missing = [d for d in users if not d.startswith("index:") and d not in catalog]
    _record_missing(customer, missing)
    damaged_keys = [*bad, *missing, *(k for k in users if k.startswith("index:"))]
    affected = set()
    for key in damaged_keys:
        affected.update(users.get(key, ()))
    now = timezone.now()
    if affected:
        Snapshot.objects.for_customer(customer).filter(pk__in=affected).update(
            state=SnapshotState.FAILED
        )
    if sample_percent >= 100:
        healthy = [s.pk for s in snapshots if s.pk not in affected]
        Snapshot.objects.for_customer(customer).filter(pk__in=healthy).update(verified_at=now)
    return {
        "snapshots": len(snapshots),
        "chunks_checked": checked,
        "bytes_checked": checked_bytes,
        "bad_chunks": sorted(bad),
        "missing_chunks": sorted(missing),
        "index_problems": problems,
        "affected_snapshots": sorted(str(pk) for pk in affected),
    }


def verify_store(*, customer=None, sample_percent: float = 100.0) -> dict:
    """Verify one customer or all; the summary's ``damaged`` says whether anything was bad."""
    started = time.monotonic()
    if customer is not None:
        customers = [customer]
    else:  # customers that have a store; the others have nothing to verify
        stores = CustomerStore.objects.select_related("customer").order_by("pk")
        customers = [store.customer for store in stores]
    total = {
        "customers": 0,
        "snapshots": 0,
        "chunks_checked": 0,
        "bytes_checked": 0,
        "bad_chunks": [],
        "missing_chunks": [],
        "index_problems": [],
        "affected_snapshots": [],
    }
    for each in customers:
        run = MaintenanceRun.objects.create(kind=MaintenanceKind.VERIFY, customer=each)
        result = verify_customer(each, sample_percent=sample_percent)
        run.finished_at = timezone.now()
        run.ok = not (result["bad_chunks"] or result["missing_chunks"] or result["index_problems"])
        run.summary = {**result, "sample_percent": sample_percent}
        run.save()
        total["customers"] += 1
        for key in ("snapshots", "chunks_checked", "bytes_checked"):
            total[key] += result[key]
        for key in ("bad_chunks", "missing_chunks", "index_problems", "affected_snapshots"):
            total[key].extend(result[key])
    total["damaged"] = bool(
        total["bad_chunks"] or total["missing_chunks"] or total["index_problems"]
    )
    total["sample_percent"] = sample_percent
    total["duration_seconds"] = round(time.monotonic() - started, 3)
    return total
