"""A snapshot disk read through the datastore's HTTP interface (``/folder``), as a source disk.

vCenter and ESXi serve a datastore's files at
``/folder/<path>?dcPath=<datacenter>&dsName=<datastore>`` to a logged-in session (its cookie),
with ``Range`` requests. The snapshot's frozen layer of a disk is the file its backing names in
the snapshot's config (``[ds] vm/disk.vmdk``): a descriptor whose extent line names the flat
image (``RW 2097152 VMFS "disk-flat.vmdk"``, :func:`flat_extent`); while the snapshot exists the
VM writes into a new delta layer, so that image holds the point in time. A frozen layer that is
itself a sparse delta (the VM had snapshots of its own under ours) is refused clearly.
:class:`DatastoreDisk` has the interface the pipeline reads (``key``, ``size``,
``read(offset, length)``, ``close()``); the pipeline's hash threads call ``read`` at once, each
on its own pooled keep-alive connection of the session's HTTP client, so reads run in parallel.

A read that fails (a dropped connection, a 5xx) is retried by the client with backoff; one
that still fails, or an answer that is not exactly the range asked for, is a
:class:`~agent.errors.DiskError` naming the disk, the datastore and the byte: the job fails,
and the next job reads again (chunks already stored are not sent twice).

Where a real vCenter differs (README, *Replicating VMware VMs*): the frozen layer is a flat
file only for a VM without other snapshots (delta chains are not read); vSAN and vVols
datastores have no ``/folder`` access (VDDK's NBD/SAN transports are the way there, not part
of this agent version).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ..errors import AgentError, DiskError
from ..ranged import RangeDisk

# Descriptor files are a few hundred bytes; anything this big is not one.
MAX_DESCRIPTOR = 64 * 1024
FLAT_EXTENTS = ("FLAT", "VMFS")  # a plain image of the sectors (ESXi writes VMFS)
_CREATE_TYPE = re.compile(r'^\s*createType\s*=\s*"([^"]*)"', re.M)
_EXTENT = re.compile(
    r'^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]+)")?(?:\s+(\d+))?', re.M
)


@dataclass(frozen=True)
class DatastoreFile:
    """A file on a datastore: ``[datastore] path`` plus the datacenter it is in."""

    datacenter: str  # the inventory path of the datacenter (``DC0``, ``folder/DC1``)
    datastore: str
    path: str

    @classmethod
    def from_backing(cls, datacenter: str, file_name: str) -> DatastoreFile:
        """``[LocalDS_0] vm/disk.vmdk`` (a backing's ``fileName``: the descriptor)."""
        if not file_name.startswith("[") or "] " not in file_name:
            raise AgentError(f"the disk backing {file_name!r} is not a datastore path")
        datastore, _, path = file_name[1:].partition("] ")
        if not path.endswith(".vmdk"):
            raise AgentError(f"the disk backing {file_name!r} is not a VMDK")
        return cls(datacenter, datastore, path)

    def with_path(self, path: str) -> DatastoreFile:
        return DatastoreFile(self.datacenter, self.datastore, path)

    def url(self) -> str:
        query = urlencode({"dcPath": self.datacenter, "dsName": self.datastore})
        return f"/folder/{quote(self.path)}?{query}"

    def __str__(self) -> str:
        return f"[{self.datastore}] {self.path}"


def parse_descriptor(text: str, where: str) -> tuple[str, str, int]:
    """``(createType, flat extent file, sectors)`` of a VMDK descriptor with one flat extent;
    an AgentError saying why for anything else (a sparse delta disk, several extents)."""
    found = _CREATE_TYPE.search(text)
    create_type = found.group(1) if found else "?"
    extents = [m.groups() for m in _EXTENT.finditer(text)]
    if len(extents) != 1:
        raise AgentError(
            f"{where} has {len(extents)} extents (createType {create_type!r}); this agent "
            "reads disks with exactly one flat extent"
        )
    _, sectors, kind, name, offset = extents[0]
    if kind not in FLAT_EXTENTS:
        raise AgentError(
            f"{where} is a {kind} extent (createType {create_type!r}), not a flat disk: the VM "
            "has other snapshots under this one, whose delta chain this agent cannot read "
            "through the datastore interface (remove the VM's other snapshots, or replicate "
            "it without them)"
        )
    if not name or int(offset or 0) != 0:
        raise AgentError(f"{where}: its flat extent is not a whole file")
    return create_type, name, int(sectors)


def flat_extent(client, file: DatastoreFile, capacity: int) -> DatastoreFile:
    """The flat image behind a disk's descriptor ``file`` (``[ds] vm/disk.vmdk``), read from
    the datastore: ESXi names it in the descriptor's extent line (``RW 2097152 VMFS
    "disk-flat.vmdk"``), usually but not always ``<name>-flat.vmdk``."""
    try:
        response = client.request("GET", file.url(), headers={"Accept": "*/*"}, check=False)
    except AgentError as exc:
        raise DiskError(f"reading the descriptor {file} failed: {exc}") from None
    if response.status != 200:
        hint = "; the next job reads it again"
        if response.status == 404:
            hint = " (vSAN and vVols datastores have no /folder access: not supported)"
        raise DiskError(
            f"reading the descriptor {file}: the datastore answered HTTP {response.status}{hint}"
        )
    body = response.body or b""
    if len(body) > MAX_DESCRIPTOR or b"\0" in body[:4096]:
        raise DiskError(f"{file} is not a VMDK descriptor (a binary or monolithic sparse disk)")
    _, name, sectors = parse_descriptor(body.decode(errors="replace"), str(file))
    if sectors * 512 < capacity:
        raise DiskError(
            f"the flat extent of {file} holds {sectors * 512} bytes, less than the disk's "
            f"{capacity}"
        )
    return file.with_path(posixpath.join(posixpath.dirname(file.path), name))


class DatastoreDisk(RangeDisk):
    """One snapshot disk's frozen flat image, ``size`` bytes, read by Range through
    ``client`` (which carries the vCenter session cookie)."""

    def __init__(self, client, file: DatastoreFile, key: str, size: int):
        super().__init__(client, file.url(), key, size, source=f"datastore file {file}")
        self.file = file
