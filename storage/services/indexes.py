"""Index files in the catalog: writing a snapshot's index (full, or a delta of its base's)
and reading any snapshot's index back through its chain of delta files."""

import threading
from collections import OrderedDict

from django.conf import settings
from django.utils import timezone

from storage.models import IndexFile, IndexKind
from storage.store.index import (
    ZERO_DIGEST,
    Index,
    decode_index_file,
    encode_index_file,
    materialize,
    plan_index_file,
)

from .context import StoreHandle


def chain_of(index_file: IndexFile) -> list[IndexFile]:
    """The index files to read for ``index_file``, full first."""
    chain = [index_file]
    while chain[-1].base_id is not None:
        chain.append(chain[-1].base)
    chain.reverse()
    return chain


class IndexCache:
    """Materialized indexes by index file, least recently used out past ``max_bytes``.

    Index files never change once written, and a materialized index was verified against its
    checksum, so a cached one is as good as a fresh read. Restores ask for the same index on
    every Range request (one per chunk span) and commits for the base's index of every
    incremental: without the cache each of those re-reads and re-applies a delta chain.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, Index] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Index | None:
        with self._lock:
            index = self._items.get(key)
            if index is not None:
                self._items.move_to_end(key)
            return index

    def put(self, key: tuple, index: Index) -> None:
        size = len(index.digests)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = index
            self._bytes += size
            while self._bytes > self.max_bytes:
                _key, old = self._items.popitem(last=False)
                self._bytes -= len(old.digests)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


INDEX_CACHE = IndexCache(settings.STORE_INDEX_CACHE_BYTES)


def load_index(store: StoreHandle, index_file: IndexFile, *, cached: bool = True) -> Index:
    """The materialized index; every link's structure and the final checksum are verified.

    ``cached=False`` reads the files (verify, GC: a full pass would only churn the cache).
    """
    key = (store.namespace, index_file.pk, index_file.checksum)
    if cached and (index := INDEX_CACHE.get(key)) is not None:
        return index
    files = [
        decode_index_file(store.backend.get_object(store.namespace, link.object_name))
        for link in chain_of(index_file)
    ]
    index = materialize(files, expected_checksum=index_file.checksum)
    if cached:
        INDEX_CACHE.put(key, index)
    return index


def referenced_hex(index: Index) -> set[str]:
    """The distinct non-zero digests of an index, hex: the chunks it needs."""
    return index.referenced_hex()


def zero_entries(index: Index) -> int:
    return sum(1 for digest in index if digest == ZERO_DIGEST)


def nonzero_bytes(index: Index, zeros: int) -> int:
    """Bytes covered by non-zero entries (``zeros``: the zero entry count; the last entry
    may be shorter than a chunk)."""
    count = len(index)
    if count == 0:
        return 0
    total = (count - zeros) * index.chunk_size
    if index[count - 1] != ZERO_DIGEST:
        _offset, length = index.entry_range(count - 1)
        total -= index.chunk_size - length
    return total


def save_index(
    customer, store: StoreHandle, index: Index, *, base_file: IndexFile | None, base_index
) -> IndexFile:
    """Write ``index`` as an object; return its catalog row, still to be saved.

    The object is written first and the row is saved by the caller's transaction: a crash in
    between leaves an unreferenced object that garbage collection removes after its grace.
    """
    depth = base_file.depth if base_file is not None else 0
    planned, own_depth = plan_index_file(index, base_index, depth)
    data = encode_index_file(planned)
    row = IndexFile(
        customer=customer,
        checksum=index.checksum(),
        chunk_size=index.chunk_size,
        disk_size=index.disk_size,
        entries=len(index),
        stored_bytes=len(data),
        created_at=timezone.now(),
    )
    if planned.is_full:
        row.kind, row.depth = IndexKind.FULL, 0
    else:
        row.kind, row.base, row.depth = IndexKind.DELTA, base_file, own_depth
    store.backend.put_object(store.namespace, row.object_name, data)
    return row
