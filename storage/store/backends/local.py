"""Local filesystem backend: the embedded default, under the data folder.

Layout::

    root/<ns>/chunks/<hex[:2]>/<hex[2:4]>/<hex>      blobs (two prefix levels: <= 65,536 dirs,
                                                     so no directory grows huge)
    root/<ns>/objects/<name>                         index files etc.
    root/<ns>/quarantine/<hex>.<timestamp>           bad chunks kept for forensics
    root/<ns>/quarantine/<hex>.<timestamp>.reason    why

Writes are atomic: the data goes to ``.<name>.<random>.tmp`` in the target directory, is
fsynced (when ``fsync``), renamed over the target with ``os.replace`` and the directory is
fsynced (when ``fsync``; new directories' parents too). A crash leaves at worst a temp file,
which no listing shows and no valid name can address (names never start with ".").
Deletes are not fsynced: a delete lost in a crash only leaves garbage the next GC removes.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from ..errors import BackendError, ChunkNotFound, ObjectNotFound
from .base import (
    ChunkBackend,
    ChunkStat,
    ObjectStat,
    QuarantineStat,
    check_digest_hex,
    check_namespace,
    check_object_name,
    check_object_prefix,
)

_REASON_SUFFIX = ".reason"
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


class LocalBackend(ChunkBackend):
    def __init__(self, root: Path, fsync: bool = True):
        self.root = Path(root).absolute()
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.root)!r}, fsync={self.fsync})"

    # -- paths (every public method goes through these validators) -------------------------

    def _ns_dir(self, ns: str) -> Path:
        return self.root / check_namespace(ns)

    def _chunk_path(self, ns: str, digest_hex: str) -> Path:
        check_digest_hex(digest_hex)
        return self._ns_dir(ns) / "chunks" / digest_hex[:2] / digest_hex[2:4] / digest_hex

    def _object_path(self, ns: str, name: str) -> Path:
        return self._ns_dir(ns) / "objects" / check_object_name(name)

    # -- atomic write machinery -----------------------------------------------------------

    def _fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _makedirs(self, directory: Path) -> None:
        """Create missing directories; with fsync, make each new entry durable in its parent."""
        missing = []
        path = directory
        while not path.is_dir():
            missing.append(path)
            path = path.parent
        for path in reversed(missing):
            with suppress(FileExistsError):  # a concurrent writer created it
                os.mkdir(path, 0o700)
            if self.fsync:
                self._fsync_dir(path.parent)

    def _open_temp(self, path: Path) -> tuple[int, Path]:
        temp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            return os.open(temp, flags, 0o600), temp
        except FileNotFoundError:  # first write into this prefix directory
            self._makedirs(path.parent)
            return os.open(temp, flags, 0o600), temp

    def _write_atomic(self, path: Path, data: bytes) -> None:
        fd, temp = self._open_temp(path)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(temp)
            raise
        if self.fsync:
            self._fsync_dir(path.parent)

    def _put(self, path: Path, data: bytes, what: str) -> None:
        try:
            self._write_atomic(path, data)
        except OSError as exc:
            raise BackendError(f"cannot write {what}: {exc}") from exc

    @staticmethod
    def _read(path: Path, not_found: Exception) -> bytes:
        try:
            with open(path, "rb") as f:
                return f.read()
        except _MISSING:
            raise not_found from None
        except OSError as exc:
            raise BackendError(f"cannot read {path.name}: {exc}") from exc

    # -- chunks ---------------------------------------------------------------------------

    def put_chunk(self, ns: str, digest_hex: str, blob: bytes) -> None:
        self._put(self._chunk_path(ns, digest_hex), blob, f"chunk {digest_hex}")

    def get_chunk(self, ns: str, digest_hex: str) -> bytes:
        path = self._chunk_path(ns, digest_hex)
        return self._read(path, ChunkNotFound(f"chunk {digest_hex} not found"))

    def delete_chunk(self, ns: str, digest_hex: str) -> None:
        with suppress(*_MISSING):
            os.unlink(self._chunk_path(ns, digest_hex))

    def has_chunk(self, ns: str, digest_hex: str) -> bool:
        return self._chunk_path(ns, digest_hex).is_file()

    def iter_chunks(self, ns: str) -> Iterator[ChunkStat]:
        base = self._ns_dir(ns) / "chunks"
        for level1 in _scandir(base):
            if len(level1.name) != 2 or not _is_hex(level1.name):
                continue
            for level2 in _scandir(level1.path):
                if len(level2.name) != 2 or not _is_hex(level2.name):
                    continue
                prefix = level1.name + level2.name
                for entry in _scandir(level2.path):
                    name = entry.name
                    if len(name) != 64 or not name.startswith(prefix) or not _is_hex(name):
                        continue  # temp files of in-flight or crashed writes, strays
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:  # deleted while listing
                        continue
                    if entry.is_file(follow_symlinks=False):
                        yield ChunkStat(name, st.st_size, st.st_mtime)

    def quarantine_chunk(self, ns: str, digest_hex: str, reason: str) -> None:
        source = self._chunk_path(ns, digest_hex)
        qdir = self._ns_dir(ns) / "quarantine"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = qdir / f"{digest_hex}.{stamp}"
        if not source.is_file():
            raise ChunkNotFound(f"chunk {digest_hex} not found")
        reason_path = qdir / f"{target.name}{_REASON_SUFFIX}"
        self._put(reason_path, reason.encode(), "quarantine reason")
        try:
            os.replace(source, target)
        except FileNotFoundError:  # deleted meanwhile (GC)
            with suppress(OSError):
                os.unlink(reason_path)
            raise ChunkNotFound(f"chunk {digest_hex} not found") from None
        except OSError as exc:
            raise BackendError(f"cannot quarantine chunk {digest_hex}: {exc}") from exc
        if self.fsync:
            self._fsync_dir(qdir)
            self._fsync_dir(source.parent)

    def iter_quarantine(self, ns: str) -> Iterator[QuarantineStat]:
        qdir = self._ns_dir(ns) / "quarantine"
        for entry in sorted(_scandir(qdir), key=lambda e: e.name):
            name = entry.name
            digest_hex, dot, _stamp = name.partition(".")
            if name.endswith(_REASON_SUFFIX) or not dot or len(digest_hex) != 64:
                continue
            if not _is_hex(digest_hex) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            try:
                reason = (qdir / f"{name}{_REASON_SUFFIX}").read_text(errors="replace")
            except FileNotFoundError:
                reason = ""
            yield QuarantineStat(digest_hex, name, st.st_size, st.st_mtime, reason)

    # -- objects --------------------------------------------------------------------------

    def put_object(self, ns: str, name: str, data: bytes) -> None:
        self._put(self._object_path(ns, name), data, f"object {name}")

    def get_object(self, ns: str, name: str) -> bytes:
        path = self._object_path(ns, name)
        return self._read(path, ObjectNotFound(f"object {name} not found"))

    def delete_object(self, ns: str, name: str) -> None:
        with suppress(*_MISSING):
            os.unlink(self._object_path(ns, name))

    def iter_objects(self, ns: str, prefix: str = "") -> Iterator[ObjectStat]:
        base = self._ns_dir(ns) / "objects"
        check_object_prefix(prefix)
        directory = prefix.rpartition("/")[0]  # the deepest directory the prefix fully names
        found: list[ObjectStat] = []
        for dirpath, dirnames, filenames in os.walk(base / directory if directory else base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(base).as_posix()
            for filename in filenames:
                name = filename if rel == "." else f"{rel}/{filename}"
                if filename.startswith(".") or not name.startswith(prefix):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, filename), follow_symlinks=False)
                except FileNotFoundError:
                    continue
                found.append(ObjectStat(name, st.st_size, st.st_mtime))
        found.sort()  # same order as an S3 listing
        yield from found


def _scandir(path: str | Path) -> list[os.DirEntry]:
    """Entries of a directory, or none when it does not exist (yet, or any more)."""
    try:
        with os.scandir(path) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []
