"""The storage behind the in-test oVirt engine: real qcow2 volumes, real image transfers.

The engine API is a stand-in (``tests/ovirt_support.py``); its data side is what an oVirt
host really runs: every disk is a chain of qcow2 volumes (``qemu-img``), a snapshot freezes
each disk's active volume and puts a new empty one on top (the guest writes on into it), a
deleted snapshot is merged into the volume above it with ``qemu-img commit`` (the merged volume
keeps the upper volume's id, so the snapshot above keeps its volume), and an image transfer is
a ``qemu-nbd`` export of one volume — shallow (the layer alone) or with its chain — behind a
ticket of the real ovirt-imageio daemon (``tests/imageio_support.py``).

The "guest" writes through ``qemu-io`` into the disk's active volume, as the VM would.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.imageio_support import Imageio, NbdExport


@dataclass
class Volume:
    id: str
    disk: str
    path: Path
    parent: str | None
    snapshot: str | None = None  # the snapshot that froze it; None while active


@dataclass
class Transfer:
    id: str
    volume: str
    disk: str
    shallow: bool
    ticket: str
    export: NbdExport | None
    phase: str = "initializing"


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv[:2])} failed: {done.stderr.strip()}")


class Storage:
    """qcow2 chains of the engine's disks in ``folder``, served by ``imageio``."""

    def __init__(self, folder: Path, imageio: Imageio, sizes: dict[str, int], initial=None):
        """``initial``: {disk: raw image} the disks start with (a VM that has lived a while;
        zeros stay unallocated), else they start empty."""
        self.folder, self.imageio = folder, imageio
        self.sizes = dict(sizes)
        self.volumes: dict[str, Volume] = {}
        self.transfers: dict[str, Transfer] = {}
        self.lock = threading.RLock()
        folder.mkdir(parents=True, exist_ok=True)
        for disk, size in sizes.items():
            volume = self._new_volume(disk, None)
            raw = (initial or {}).get(disk)
            if raw is not None:
                _run("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw),
                     str(volume.path))  # fmt: skip
            else:
                _run("qemu-img", "create", "-q", "-f", "qcow2", str(volume.path), str(size))

    def _new_volume(self, disk: str, parent: str | None) -> Volume:
        ident = f"vol-{secrets.token_hex(6)}"
        volume = Volume(ident, disk, self.folder / f"{ident}.qcow2", parent)
        self.volumes[ident] = volume
        return volume

    def active(self, disk: str) -> Volume:
        return next(v for v in self.volumes.values() if v.disk == disk and v.snapshot is None)

    def child_of(self, volume: Volume) -> Volume | None:
        return next((v for v in self.volumes.values() if v.parent == volume.id), None)

    # -- the guest --------------------------------------------------------------------------

    def write(self, disk: str, offset: int, data: bytes) -> None:
        with self.lock, tempfile.NamedTemporaryFile(dir=self.folder) as source:
            source.write(data)
            source.flush()
            active = self.active(disk)
            _run("qemu-io", "-f", "qcow2", "-c",
                 f"write -s {source.name} {offset} {len(data)}", str(active.path))  # fmt: skip

    def content(self, disk: str) -> bytes:
        """What the guest reads from the whole disk now."""
        with self.lock, tempfile.NamedTemporaryFile(dir=self.folder, suffix=".raw") as out:
            _run("qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw",
                 str(self.active(disk).path), out.name)  # fmt: skip
            return Path(out.name).read_bytes()

    # -- snapshots --------------------------------------------------------------------------

    def freeze(self, snapshot: str, disks: list[str]) -> dict[str, str]:
        """Freeze each disk's active volume for ``snapshot``; returns {disk: frozen volume}."""
        frozen = {}
        with self.lock:
            for disk in disks:
                old = self.active(disk)
                old.snapshot = snapshot
                new = self._new_volume(disk, old.id)
                _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(old.path),
                     "-F", "qcow2", str(new.path))  # fmt: skip
                frozen[disk] = old.id
        return frozen

    def merge(self, snapshot: str) -> None:
        """Delete ``snapshot``: each of its volumes is committed into by the volume above
        (``qemu-img commit`` of the upper one into it), and the result takes the upper
        volume's place and id."""
        with self.lock:
            for volume in [v for v in self.volumes.values() if v.snapshot == snapshot]:
                upper = self.child_of(volume)
                _run("qemu-img", "commit", "-q", "-f", "qcow2", str(upper.path))
                volume.path.replace(upper.path)  # the merged data, under the upper's name
                upper.parent = volume.parent
                del self.volumes[volume.id]

    # -- image transfers --------------------------------------------------------------------

    def start_transfer(self, volume_id: str, shallow: bool) -> Transfer:
        with self.lock:
            volume = self.volumes[volume_id]
            ident = f"tr-{secrets.token_hex(6)}"
            sock = Path(tempfile.gettempdir()) / f"acura-nbd-{ident}.sock"
            export = NbdExport(volume.path, sock, shallow=shallow)
            ticket = secrets.token_hex(16)
            self.imageio.add_ticket(ticket, export.url, self.sizes[volume.disk])
            transfer = Transfer(ident, volume_id, volume.disk, shallow, ticket, export)
            self.transfers[ident] = transfer
            return transfer

    def end_transfer(self, ident: str, phase: str) -> Transfer:
        with self.lock:
            transfer = self.transfers[ident]
            if transfer.export is not None:
                self.imageio.remove_ticket(transfer.ticket)
                transfer.export.stop()
                transfer.export = None
            transfer.phase = phase
            return transfer

    def close(self) -> None:
        for ident in list(self.transfers):
            self.end_transfer(ident, self.transfers[ident].phase)
