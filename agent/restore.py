"""Restore a snapshot's disk bit-exact into a file or a block device.

The snapshot's index is fetched first and checked against the snapshot's checksum; then
parallel HTTP Range GETs fetch runs of non-zero chunks (zero chunks are never fetched: a new
file is sparse, a device gets zeros written) and every chunk is verified against its index
digest before it is written. So the result is the snapshot, bit for bit, or a clear error —
and a file restore writes to ``<output>.partial`` and renames only when everything verified,
so a failed restore never leaves something that looks like a disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .disk import zeros
from .errors import AgentError, DiskError, ServerError, UnreachableError, UsageError
from .index import DIGEST_SIZE, ZERO_DIGEST, fetch_index

log = logging.getLogger("agent.restore")

MiB = 1 << 20
SPAN_BYTES = 16 * MiB  # bytes per Range request


class RestoreError(AgentError):
    pass


def _spans(digests: bytes, chunk_size: int, disk_size: int):
    """Runs of consecutive non-zero chunks (first position, count), ≤ SPAN_BYTES each,
    and the positions of zero chunks."""
    per = max(1, SPAN_BYTES // chunk_size)
    spans, zero = [], []
    start = None
    n = len(digests) // DIGEST_SIZE
    for pos in range(n):
        is_zero = digests[pos * DIGEST_SIZE : (pos + 1) * DIGEST_SIZE] == ZERO_DIGEST
        if is_zero:
            zero.append(pos)
        if start is not None and (is_zero or pos - start >= per):
            spans.append((start, pos - start))
            start = None
        if not is_zero and start is None:
            start = pos
    if start is not None:
        spans.append((start, n - start))
    return spans, zero


def _open_output(path: str, size: int) -> tuple[int, str | None]:
    """(fd, temporary path or None for a device)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise DiskError(f"cannot use output {path}: {exc.strerror}") from None
    if mode is not None and stat.S_ISBLK(mode):
        try:
            fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
            device_size = os.lseek(fd, 0, os.SEEK_END)
        except OSError as exc:
            raise DiskError(f"cannot open output device {path}: {exc.strerror}") from None
        if device_size < size:
            os.close(fd)
            raise DiskError(
                f"output device {path} has {device_size} bytes; the snapshot needs {size}"
            )
        return fd, None
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(f"output {path} is neither a regular file nor a block device")
    tmp = f"{path}.partial"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(fd, size)
    except OSError as exc:
        raise DiskError(f"cannot create output {tmp}: {exc.strerror}") from None
    return fd, tmp


def restore_snapshot(
    client, snapshot_id: str, output: str, *, threads: int = 4, retries: int = 3, echo=None
) -> dict:
    started = time.monotonic()
    snapshot = client.json("GET", f"snapshots/{snapshot_id}/")
    state = snapshot.get("state")
    if state == "failed":
        raise RestoreError(
            f"snapshot {snapshot_id} failed verification (one of its chunks is damaged); it "
            "can be restored once the next replication has uploaded that chunk again"
        )
    if state not in (None, "complete"):
        raise RestoreError(f"snapshot {snapshot_id} is {state}; it cannot be restored")
    index = fetch_index(client, snapshot_id, snapshot.get("index_checksum"))
    cs, size = index.chunk_size, index.disk_size
    spans, zero_positions = _spans(index.digests, cs, size)
    fd, tmp = _open_output(output, size)
    lock = threading.Lock()
    counts = {"bytes_received": 0, "bytes_written": 0}

    def fetch(span: tuple[int, int]) -> None:
        first, count = span
        start = first * cs
        end = min(size, (first + count) * cs)
        for attempt in range(retries + 1):
            try:
                _fetch_span(client, snapshot_id, index, fd, first, count, start, end)
                break
            except UnreachableError:
                if attempt == retries:
                    raise
                log.warning("restore: range %d-%d broke off; fetching it again", start, end - 1)
        with lock:
            counts["bytes_received"] += end - start
            counts["bytes_written"] += end - start
            if echo is not None:
                echo(f"restored {counts['bytes_written'] / MiB:.0f} of {size / MiB:.0f} MiB")

    try:
        if tmp is None:  # a device holds old data where the snapshot has zero chunks
            for pos in zero_positions:
                length = min(cs, size - pos * cs)
                write_all(fd, zeros(length), pos * cs)
        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="restore") as pool:
            list(pool.map(fetch, spans))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    os.close(fd)
    if tmp is not None:
        os.replace(tmp, output)
    return {
        "snapshot": snapshot_id,
        "output": output,
        "disk_size": size,
        "chunks": len(index),
        "zero_chunks": len(zero_positions),
        "bytes_received": counts["bytes_received"],
        "index_checksum": index.checksum(),
        "seconds": round(time.monotonic() - started, 3),
    }


def write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    try:
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written
    except OSError as exc:
        raise DiskError(f"cannot write the output at byte {offset}: {exc.strerror}") from None


def _fetch_span(client, snapshot_id, index, fd, first, count, start, end) -> None:
    cs = index.chunk_size
    response = client.request(
        "GET",
        f"snapshots/{snapshot_id}/image/",
        headers={"Range": f"bytes={start}-{end - 1}"},
        stream=True,
    )
    try:
        if response.status != 206:
            raise ServerError(response.status, f"expected a 206 range answer for {start}-{end - 1}")
        for pos in range(first, first + count):
            offset = pos * cs
            length = min(cs, end - offset)
            try:
                data = response.read(length)
            except Exception as exc:
                raise UnreachableError(f"the image download broke off: {exc}") from None
            if len(data) != length:
                raise UnreachableError(
                    f"the image of snapshot {snapshot_id} ended at byte {offset + len(data)}"
                )
            expected = index.digests[pos * DIGEST_SIZE : (pos + 1) * DIGEST_SIZE]
            if hashlib.sha256(data).digest() != expected:
                raise RestoreError(
                    f"chunk {pos} (bytes {offset}-{offset + length - 1}) of snapshot "
                    f"{snapshot_id} does not match its index digest; the restore is incomplete"
                )
            write_all(fd, data, offset)
    finally:
        response.close()
