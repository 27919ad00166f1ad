"""Garbage collection in a real thread beside real uploader and pruner threads, each on its
own database connection (row locks and transactions for real on PostgreSQL; SQLite
serializes writers). Afterwards every snapshot restores bit-exact."""

import hashlib
import random
import threading
import time
import uuid
from datetime import timedelta

import pytest
import zstandard
from django.db import OperationalError, close_old_connections, connection

from protection.models import KEEP_FIELDS
from protection.services.policy import policy_update
from storage.models import Snapshot
from storage.services.chunks import UploadEntry
from storage.services.gc import CustomerGc
from storage.services.prune import prune_customer
from storage.services.restore import SnapshotImage
from storage.services.sessions import (
    CommitRequest,
    session_commit,
    session_missing,
    session_open,
    session_upload,
)
from tests.storage_support import CHUNK, make_disk

pytestmark = pytest.mark.django_db(transaction=True)


def retrying(fn, *args, **kwargs):
    """SQLite answers a busy database with an error after its timeout: try again."""
    for _ in range(20):
        try:
            return fn(*args, **kwargs)
        except OperationalError:
            time.sleep(0.05)
    return fn(*args, **kwargs)


def test_collector_thread_beside_uploaders_and_pruner(customer):
    policy_update(customer, customer, {**dict.fromkeys(KEEP_FIELDS, 0), "keep_last": 2})
    pool = [random.Random(i).randbytes(CHUNK) for i in range(8)]
    disks = [make_disk(customer, key=f"t{i}") for i in range(3)]
    expected, errors, removed, stop = {}, [], [], threading.Event()
    lock = threading.Lock()

    def uploader(disk, seed):
        rng = random.Random(seed)
        compressor = zstandard.ZstdCompressor(level=1)
        try:
            for _ in range(6):
                session, _ = retrying(session_open, customer, disk.machine, disk)
                chunks = [rng.choice(pool) for _ in range(rng.randint(1, 4))]
                digests = [hashlib.sha256(c).digest() for c in chunks]
                missing = set(retrying(session_missing, session, [d.hex() for d in digests]))
                for chunk, digest in zip(chunks, digests, strict=True):
                    if digest.hex() in missing:
                        missing.discard(digest.hex())
                        entry = UploadEntry(digest.hex(), len(chunk), compressor.compress(chunk))
                        retrying(session_upload, session, [entry])
                data = b"".join(chunks)
                request = CommitRequest(disk_size=len(data), digests=b"".join(digests))
                snapshot = retrying(session_commit, session, request)
                with lock:
                    expected[snapshot.pk] = data
        except Exception as exc:  # reported by the main thread
            errors.append(repr(exc))
        finally:
            connection.close()

    def collector():
        try:
            while not stop.is_set():
                retrying(CustomerGc(customer, grace=timedelta(0), batch=2).run)
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connection.close()

    def pruner():
        # The real prune service (keep-last 2 per disk), locking like production does.
        try:
            while not stop.is_set():
                result = retrying(prune_customer, customer)
                with lock:
                    removed.extend(result["removed_ids"])
                    for snapshot_id in result["removed_ids"]:
                        expected.pop(uuid.UUID(snapshot_id), None)
                time.sleep(0.01)
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connection.close()

    background = [threading.Thread(target=collector), threading.Thread(target=pruner)]
    uploaders = [threading.Thread(target=uploader, args=(d, i)) for i, d in enumerate(disks)]
    for thread in background + uploaders:
        thread.start()
    for thread in uploaders:
        thread.join(timeout=120)
    # On a loaded machine the pruner can be starved while the uploads run; give the collector
    # and the pruner (still racing each other) a bounded while to do their part first.
    deadline = time.monotonic() + 30
    while not removed and not errors and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in background:
        thread.join(timeout=60)
    close_old_connections()
    assert errors == []
    assert expected, "no snapshot survived: the test exercised nothing"
    assert removed, "prune removed nothing: the test exercised less than it claims"
    for snapshot in Snapshot.objects.for_customer(customer).select_related("index"):
        assert b"".join(SnapshotImage.open(snapshot).iter_range()) == expected[snapshot.pk]
