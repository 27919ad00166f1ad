"""The pipeline's small parts: upload records (zstd level 1, one compressor per thread) and
a task group on a thread pool whose first error stops the others."""

from __future__ import annotations

import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import zstandard

from .errors import Cancelled

RECORD = struct.Struct(">32sII")  # digest, plain size, frame size

_local = threading.local()


def compressor() -> zstandard.ZstdCompressor:
    """One zstd level-1 compressor per thread (a compressor is not thread-safe)."""
    cctx = getattr(_local, "cctx", None)
    if cctx is None:
        cctx = _local.cctx = zstandard.ZstdCompressor(level=1)
    return cctx


def frame_record(digest: bytes, data: bytes) -> tuple[bytes, bytes, bytes]:
    """A chunk as an upload record ``(digest, header, zstd frame)``; the header is
    ``digest | plain size | frame size``. Header and frame stay apart: the upload sends the
    pieces as they are (no copy of the batch into one buffer)."""
    frame = compressor().compress(data)
    return digest, RECORD.pack(digest, len(data), len(frame)), frame


def record_size(record) -> int:
    """Bytes a queued record holds: header and frame, or the plain chunk not yet compressed
    (a ``(digest, data)`` pair)."""
    return len(record[1]) + len(record[2]) if len(record) == 3 else len(record[1])


def plain_size(record) -> int:
    """Disk bytes a queued record stands for (the chunk's plaintext length)."""
    return RECORD.unpack_from(record[1])[1] if len(record) == 3 else len(record[1])


class Tasks:
    """Tasks on a pool with an optional cap on how many are pending; the first error wins
    and sets ``abort``."""

    def __init__(self, pool: ThreadPoolExecutor, abort: threading.Event, limit: int = 0):
        self.pool, self.abort, self.limit = pool, abort, limit
        self.cond = threading.Condition()
        self.pending = 0
        self.error: BaseException | None = None

    def submit(self, fn, *args) -> None:
        with self.cond:
            while self.limit and self.pending >= self.limit and not self.abort.is_set():
                self.cond.wait(0.5)
            self.pending += 1
        self.pool.submit(self._run, fn, args)

    def _run(self, fn, args) -> None:
        try:
            if not self.abort.is_set():
                fn(*args)
        except BaseException as exc:
            with self.cond:
                if self.error is None:
                    self.error = exc
            self.abort.set()
        finally:
            with self.cond:
                self.pending -= 1
                self.cond.notify_all()

    def wait(self) -> None:
        with self.cond:
            while self.pending:
                self.cond.wait(0.5)


def first_error(*errors):
    """The error to report: a real failure wins over the Cancelled it caused elsewhere."""
    found = [e for e in errors if e is not None]
    for error in found:
        if not isinstance(error, Cancelled):
            return error
    return found[0] if found else None
