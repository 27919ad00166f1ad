"""Garbage collection beside uploads, commits, aborts and prunes: randomized interleavings.

Each actor is a generator; a ``yield`` marks a point where any other actor may run next. A
seeded scheduler interleaves the collection's steps (cutoff, mark, claim, sweep chunk by chunk,
index and orphan cleanup, with no grace period at all) with replications that reuse chunks the
collector may be about to sweep, aborted uploads and prunes. After every iteration every
snapshot must restore bit-exact and every catalog row must have its blob: zero lost chunks.
"""

import hashlib
import os
import random
from datetime import timedelta

import pytest

from storage.models import Chunk, SessionState, Snapshot, UploadSession
from storage.services.chunks import UploadEntry
from storage.services.context import customer_store
from storage.services.gc import CustomerGc
from storage.services.restore import SnapshotImage
from storage.services.sessions import (
    CommitRequest,
    session_abort,
    session_commit,
    session_missing,
    session_open,
    session_upload,
)
from tests.storage_support import CHUNK, make_disk

ITERATIONS = int(os.environ.get("ACURA_GC_RACE_ITERATIONS", "60"))


def frame(chunk: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=1).compress(chunk)


class World:
    def __init__(self, customer, rng):
        self.customer = customer
        self.rng = rng
        self.disks = [make_disk(customer, key=f"d{i}") for i in range(3)]
        # A small pool of chunk contents: replications keep reusing chunks that earlier
        # snapshots (since pruned) referenced — exactly the ones a collector wants to sweep.
        self.pool = [rng.randbytes(CHUNK) for _ in range(10)] + [bytes(CHUNK)]
        self.expected: dict = {}  # snapshot id -> image bytes
        self.commits = 0
        self.busy: set = set()

    def replication(self, disk):
        self.busy.add(disk.pk)
        try:
            session, _ = session_open(self.customer, disk.machine, disk)
            yield
            chunks = [self.rng.choice(self.pool) for _ in range(self.rng.randint(1, 6))]
            digests = [
                bytes(32) if not c.strip(b"\0") else hashlib.sha256(c).digest() for c in chunks
            ]
            missing = set(session_missing(session, [d.hex() for d in digests]))
            yield
            sent = set()
            for chunk, digest in zip(chunks, digests, strict=True):
                if digest.hex() in missing and digest.hex() not in sent:
                    sent.add(digest.hex())
                    session_upload(session, [UploadEntry(digest.hex(), len(chunk), frame(chunk))])
                    yield
            if self.rng.random() < 0.15:
                session_abort(session, "test abort")
                return
            data = b"".join(chunks)
            snapshot = session_commit(
                session, CommitRequest(disk_size=len(data), digests=b"".join(digests))
            )
            self.expected[snapshot.pk] = data
            self.commits += 1
        finally:
            self.busy.discard(disk.pk)

    def prune(self):
        snapshots = list(Snapshot.objects.for_customer(self.customer))
        yield
        if not snapshots:
            return
        victim = self.rng.choice(snapshots)
        open_bases = set(
            UploadSession.objects.for_customer(self.customer)
            .filter(state=SessionState.OPEN)
            .values_list("base_id", flat=True)
        )
        if victim.pk not in open_bases:
            Snapshot.objects.for_customer(self.customer).filter(pk=victim.pk).delete()
            self.expected.pop(victim.pk, None)

    def collector(self):
        gc = CustomerGc(self.customer, grace=timedelta(0), batch=1)
        gc.expire_sessions()
        yield
        gc.compute_cutoff()
        yield
        gc.mark()
        yield
        ids = gc.claim()
        yield
        for chunk_id in ids:
            gc.sweep_batch([chunk_id])
            yield
        gc.delete_unused_index_files()
        yield
        gc.delete_orphans()

    def check(self):
        store = customer_store(self.customer)
        for snapshot in Snapshot.objects.for_customer(self.customer).select_related("index"):
            image = SnapshotImage.open(snapshot)
            assert b"".join(image.iter_range()) == self.expected[snapshot.pk], snapshot.pk
        for row in Chunk.objects.for_customer(self.customer).filter(sweeping=False):
            assert store.read_chunk(row.digest)  # the blob exists and decodes


def run_iteration(world: World):
    actors = [world.collector(), world.prune()]
    for disk in world.disks:
        if disk.pk not in world.busy:
            actors.append(world.replication(disk))
    if world.rng.random() < 0.5:
        actors.append(world.collector())  # two collectors at once
    while actors:
        actor = world.rng.choice(actors)
        try:
            next(actor)
        except StopIteration:
            actors.remove(actor)


@pytest.mark.parametrize("seed", range(3))
def test_no_chunk_is_lost_under_random_interleavings(customer, seed):
    world = World(customer, random.Random(seed))
    for _ in range(ITERATIONS // 3):
        run_iteration(world)
        world.check()
    assert world.commits > ITERATIONS // 3  # the schedule really committed snapshots
    # Quiet at the end: a collection with nothing open frees everything unreferenced.
    stats = CustomerGc(customer, grace=timedelta(0)).run()
    world.check()
    referenced = set()
    store = customer_store(customer)
    from storage.services.indexes import load_index, referenced_hex

    for snapshot in Snapshot.objects.for_customer(customer).select_related("index"):
        referenced |= referenced_hex(load_index(store, snapshot.index))
    catalog = set(Chunk.objects.for_customer(customer).values_list("digest", flat=True))
    assert catalog == referenced
    on_disk = {stat.digest_hex for stat in store.backend.iter_chunks(store.namespace)}
    assert on_disk == referenced
    assert stats.errors == []
