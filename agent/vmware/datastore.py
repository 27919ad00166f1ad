"""A snapshot disk read through the datastore's HTTP interface (``/folder``), as a source disk.

vCenter and ESXi serve a datastore's files at
``/folder/<path>?dcPath=<datacenter>&dsName=<datastore>`` to a logged-in session (its cookie),
with ``Range`` requests. The snapshot's frozen layer of a disk is the ``-flat.vmdk`` beside
the descriptor its backing names (``[ds] vm/disk.vmdk`` → ``vm/disk-flat.vmdk``): while the
snapshot exists the VM writes into a new delta layer, so the frozen layer holds the point in
time. :class:`DatastoreDisk` has the interface the pipeline reads (``key``, ``size``,
``read(offset, length)``, ``close()``); the pipeline's hash threads call ``read`` at once, each
on its own pooled keep-alive connection of the session's HTTP client, so reads run in parallel.

A read that fails (a dropped connection, a 5xx) is retried by the client with backoff; one
that still fails, or an answer that is not exactly the range asked for, is a
:class:`~agent.errors.DiskError` naming the disk, the datastore and the byte: the job fails,
and the next job reads again (chunks already stored are not sent twice).

Where a real vCenter differs (README, *Replicating VMware VMs*): the frozen layer is a flat
file only for a VM without other snapshots; vSAN and vVols datastores have no ``/folder``
access (VDDK's NBD/SAN transports are the way there, not part of this agent version).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ..errors import AgentError, DiskError


@dataclass(frozen=True)
class DatastoreFile:
    """A file on a datastore: ``[datastore] path`` plus the datacenter it is in."""

    datacenter: str  # the inventory path of the datacenter (``DC0``, ``folder/DC1``)
    datastore: str
    path: str

    @classmethod
    def from_backing(cls, datacenter: str, file_name: str) -> DatastoreFile:
        """``[LocalDS_0] vm/disk.vmdk`` → the flat extent ``vm/disk-flat.vmdk`` on it."""
        if not file_name.startswith("[") or "] " not in file_name:
            raise AgentError(f"the disk backing {file_name!r} is not a datastore path")
        datastore, _, path = file_name[1:].partition("] ")
        if path.endswith("-flat.vmdk"):
            flat = path
        elif path.endswith(".vmdk"):
            flat = path[: -len(".vmdk")] + "-flat.vmdk"
        else:
            raise AgentError(f"the disk backing {file_name!r} is not a VMDK")
        return cls(datacenter, datastore, flat)

    def url(self) -> str:
        query = urlencode({"dcPath": self.datacenter, "dsName": self.datastore})
        return f"/folder/{quote(self.path)}?{query}"

    def __str__(self) -> str:
        return f"[{self.datastore}] {self.path}"


class DatastoreDisk:
    """One snapshot disk, ``size`` bytes, read by Range through ``client`` (which carries the
    vCenter session cookie)."""

    is_block = False

    def __init__(self, client, file: DatastoreFile, key: str, size: int):
        self.client, self.file, self.key, self.size = client, file, key, int(size)
        self.url = file.url()
        self.path = str(file)

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` of the frozen layer."""
        if length <= 0:
            return b""
        span = f"bytes={offset}-{offset + length - 1}"
        try:
            response = self.client.request(
                "GET", self.url, headers={"Range": span, "Accept": "*/*"}, check=False
            )
        except AgentError as exc:
            raise DiskError(
                f"reading disk {self.key} ({self.file}) at byte {offset} failed: {exc}"
            ) from None
        data = response.body or b""
        if response.status == 200 and offset == 0 and len(data) >= length:
            data = data[:length]  # a server that ignores Range for the whole file
        elif response.status != 206:
            detail = data[:200].decode(errors="replace").strip()
            tried = " (tried 5 times)" if response.status in (502, 503, 504) else ""
            raise DiskError(
                f"reading disk {self.key} ({self.file}) at byte {offset}: the datastore "
                f"answered HTTP {response.status}{': ' + detail if detail else ''}{tried}; "
                "the next job reads it again"
            )
        if len(data) != length:
            raise DiskError(
                f"reading disk {self.key} ({self.file}) at byte {offset}: {len(data)} bytes "
                f"came back, {length} were asked for (the file is shorter than the disk?)"
            )
        return data

    def close(self) -> None:
        """The connections belong to the session's client (closed with the session)."""
