"""A source disk: an image file or a block device, read with ``os.pread``.

pread releases the GIL and needs no shared file position, so the pipeline's threads read
different chunks of one descriptor at once. The size comes from ``lseek(fd, 0, SEEK_END)``,
which is right for both regular files and block devices (``st_size`` is 0 for a device).
Every failure is a :class:`DiskError` naming the disk, so the CLI exits 5 with a message a
user can act on.
"""

from __future__ import annotations

import contextlib
import os
import stat
from functools import lru_cache
from pathlib import Path

from .errors import DiskError


@lru_cache(maxsize=4)
def zeros(size: int) -> bytes:
    return bytes(size)


def is_zero(data: bytes) -> bool:
    """All bytes zero: one memcmp against a cached zero buffer (~20 us per MiB)."""
    return data == zeros(len(data))


class SourceDisk:
    """An open disk. ``key`` is the disk's key in the inventory (e.g. ``vda``)."""

    def __init__(self, path: str | os.PathLike, key: str | None = None):
        self.path = str(path)
        self.key = key or default_key(self.path)
        try:
            self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise DiskError(f"cannot open disk {self.path}: {exc.strerror}") from None
        try:
            mode = os.fstat(self.fd).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
                raise DiskError(f"disk {self.path} is neither an image file nor a block device")
            self.is_block = stat.S_ISBLK(mode)
            self.size = os.lseek(self.fd, 0, os.SEEK_END)
        except OSError as exc:
            os.close(self.fd)
            raise DiskError(f"cannot read the size of disk {self.path}: {exc.strerror}") from None
        except DiskError:
            os.close(self.fd)
            raise
        if self.is_block:
            # Sequential preads of large chunks: ask the kernel for readahead.
            advise = getattr(os, "posix_fadvise", None)
            if advise is not None:
                with contextlib.suppress(OSError):
                    advise(self.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``; a short read or an I/O error is fatal."""
        try:
            data = os.pread(self.fd, length, offset)
        except OSError as exc:
            raise DiskError(
                f"cannot read disk {self.path} at byte {offset}: {exc.strerror}"
            ) from None
        if len(data) != length:
            # pread on a file or device returns short only at its end: the disk shrank.
            got = len(data)
            while got < length:
                try:
                    more = os.pread(self.fd, length - got, offset + got)
                except OSError as exc:
                    raise DiskError(
                        f"cannot read disk {self.path} at byte {offset + got}: {exc.strerror}"
                    ) from None
                if not more:
                    raise DiskError(
                        f"disk {self.path} ended at byte {offset + got}, but it had "
                        f"{self.size} bytes when the replication started (did it shrink?)"
                    )
                data += more
                got += len(more)
        return data

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def default_key(path: str) -> str:
    """The inventory key of a disk given by path: the device name for ``/dev/...``
    (``/dev/vda`` → ``vda``, ``/dev/mapper/vg-root`` → ``vg-root``), else the file name."""
    return Path(path).name or path


def key_for(path: str, configured: dict[str, str]) -> str:
    """The config ``disks`` key whose path is ``path`` (same file), else :func:`default_key`."""
    for key, candidate in configured.items():
        if candidate == path:
            return key
    try:
        real = os.path.realpath(path)
        for key, candidate in configured.items():
            if os.path.realpath(candidate) == real:
                return key
    except OSError:
        pass
    return default_key(path)
