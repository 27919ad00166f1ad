"""Reading a snapshot back: its disk as a raw image, zeros where the index says zero."""

from collections.abc import Iterator
from dataclasses import dataclass

from storage.models import Snapshot
from storage.store.index import ZERO_DIGEST, Index

from .context import StoreHandle, customer_store
from .indexes import load_index


@dataclass
class SnapshotImage:
    """Random access to a snapshot's bytes, chunk by chunk (the chunks are verified)."""

    store: StoreHandle
    index: Index

    @classmethod
    def open(cls, snapshot: Snapshot) -> "SnapshotImage":
        store = customer_store(snapshot.customer)
        return cls(store, load_index(store, snapshot.index))

    @property
    def size(self) -> int:
        return self.index.disk_size

    def _chunk(self, position: int) -> bytes:
        size = min(self.index.chunk_size, self.index.disk_size - position * self.index.chunk_size)
        digest = self.index[position]
        if digest == ZERO_DIGEST:
            return bytes(size)
        data = self.store.read_chunk(digest.hex())
        if len(data) != size:
            raise ValueError(f"chunk {position} holds {len(data)} bytes, expected {size}")
        return data

    def iter_range(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive; default: the end of the disk)."""
        end = self.size if end is None else min(end, self.size)
        chunk_size = self.index.chunk_size
        position = start // chunk_size
        while start < end:
            data = self._chunk(position)
            offset = start - position * chunk_size
            piece = data[offset : offset + (end - start)]
            yield piece
            start += len(piece)
            position += 1
