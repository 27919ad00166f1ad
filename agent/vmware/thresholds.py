"""The cloud's storage thresholds, checked before a job touches anything.

*Storage threshold per machine disk* X: each datastore holding a disk of the VM must have
free space of at least X % of the VM's total disk size (its snapshot's delta files grow into
that space while the job reads). *Free space storage threshold* Y: each such datastore must
have at least Y % of its capacity free. 0 switches a threshold off. A refused job fails with
a message naming the datastore, its free space and the threshold; no snapshot was taken, no
power state changed.
"""

from __future__ import annotations

import logging

from pyVmomi import vim

from .session import VMwareError

log = logging.getLogger("agent.vmware")

GiB = 1 << 30


def _gib(value: int) -> str:
    return f"{value / GiB:.1f} GiB"


def datastores_of(devices) -> dict[str, object]:
    """``{name: datastore}`` holding the VM's disks."""
    found = {}
    for device in devices or []:
        if isinstance(device, vim.vm.device.VirtualDisk):
            datastore = getattr(device.backing, "datastore", None)
            if datastore is not None:
                found[datastore.name] = datastore
    return found


def check(vm_name: str, devices, cloud: dict) -> None:
    """Raise VMwareError when a threshold refuses the job; log the check either way."""
    per_disk = int(cloud.get("disk_storage_threshold_percent") or 0)
    free_min = int(cloud.get("free_space_threshold_percent") or 0)
    total = sum(
        int(getattr(d, "capacityInBytes", None) or (d.capacityInKB or 0) * 1024)
        for d in devices or []
        if isinstance(d, vim.vm.device.VirtualDisk)
    )
    for name, datastore in sorted(datastores_of(devices).items()):
        summary = datastore.summary
        capacity, free = int(summary.capacity or 0), int(summary.freeSpace or 0)
        share = 100.0 * free / capacity if capacity else 0.0
        if per_disk and free < total * per_disk / 100:
            raise VMwareError(
                f"datastore {name} has {_gib(free)} free, but the storage threshold per machine "
                f"disk asks for {per_disk} % of VM {vm_name}'s {_gib(total)} of disks "
                f"({_gib(int(total * per_disk / 100))}): the job was refused and nothing on "
                "the VM was changed"
            )
        if free_min and share < free_min:
            raise VMwareError(
                f"datastore {name} has {_gib(free)} free ({share:.1f} % of {_gib(capacity)}), "
                f"below the free space storage threshold of {free_min} %: the job was refused "
                "and nothing on the VM was changed"
            )
        log.info(
            "storage thresholds: datastore %s has %s free (%.1f %% of %s); per machine disk "
            "%s, free space %s: ok",
            name, _gib(free), share, _gib(capacity),
            f"{per_disk} %" if per_disk else "unlimited",
            f"{free_min} %" if free_min else "unlimited",
        )  # fmt: skip
