"""Index files in the catalog: writing a snapshot's index (full, or a delta of its base's)
and reading any snapshot's index back through its chain of delta files."""

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


def load_index(store: StoreHandle, index_file: IndexFile) -> Index:
    """The materialized index; every link's structure and the final checksum are verified."""
    files = [
        decode_index_file(store.backend.get_object(store.namespace, link.object_name))
        for link in chain_of(index_file)
    ]
    return materialize(files, expected_checksum=index_file.checksum)


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
