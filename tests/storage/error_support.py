"""Helpers of the API error-path tests: the error shape, and "nothing changed"."""

import os
import struct

import zstandard

from storage.models import Chunk, CustomerStore, IndexFile, Snapshot, UploadSession
from tests.api_support import error_of  # noqa: F401  (re-exported)

from .conftest import CHUNK

SESSIONS = "/api/v1/agent/upload-sessions/"
SNAPSHOTS = "/api/v1/agent/snapshots/"


def state(customer, root) -> dict:
    """What a failed request must leave as it was: the customer's rows and the files in
    its namespace (``bytes_received`` and activity timestamps are traffic statistics; the
    CustomerStore row itself is created on first use, even by a request that then fails)."""
    sessions = UploadSession.objects.for_customer(customer)
    store = CustomerStore.objects.filter(customer=customer).first()
    folder = root / store.namespace if store else None
    return {
        "chunks": sorted(Chunk.objects.for_customer(customer).values_list("digest", "sweeping")),
        "snapshots": sorted(map(str, Snapshot.objects.for_customer(customer).values_list("pk"))),
        "index_files": IndexFile.objects.for_customer(customer).count(),
        "sessions": sorted(sessions.values_list("pk", "state", "chunks_uploaded", "snapshot")),
        "files": sorted(
            (str(p.relative_to(root)), p.stat().st_size)
            for p in (folder.rglob("*") if folder else ())
            if p.is_file()
        ),
    }


class Unchanged:
    """Call it to take the reference state, ``check()`` to compare with it."""

    def __init__(self, customer, root):
        self.customer, self.root, self.before = customer, root, None

    def __call__(self):
        self.before = state(self.customer, self.root)

    def check(self):
        assert self.before is not None
        assert state(self.customer, self.root) == self.before


def rand_chunk(size: int = CHUNK) -> bytes:
    return os.urandom(size)


def record(digest: bytes, plain_size: int, frame: bytes) -> bytes:
    """One record of a chunk batch, with whatever (possibly lying) values are given."""
    return struct.pack(">32sII", digest, plain_size, len(frame)) + frame


def zframe(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=1).compress(data)


def post(agent, url, body: bytes, content_type="application/json", **extra):
    """A raw POST (bodies the JSON encoder would not produce, header overrides)."""
    return agent.client.generic("POST", url, body, content_type, **extra)
