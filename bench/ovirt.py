"""oVirt replication through the appliance's job runner, against the in-test engine (a stand-in
for the engine API) with its real data side: qcow2 volumes, qemu-nbd, the ovirt-imageio daemon.

Usage: .venv/bin/python bench/ovirt.py [--size 1G] [--change 0.01] [--chunk-size 256K]
       [--threads N] [--tmp DIR]

The VM's disk starts as bench/store.py's usual mix (40 % zeros, 30 % text-like, 30 % random),
converted into its base qcow2 volume (zeros left unallocated, as a VM that has lived a while).
The portal is gunicorn alone (bench/replication_server.py); the cloud is registered at the
``cloud`` discovery level, an appliance is enrolled, the portal discovers the VM and protection
starts. Each job is queued in the portal and run in this process by agent/ovirt:

- full: a snapshot, an image transfer of its volume with the chain, only the non-zero extents;
- incremental: ``--change`` (1 %) written by the guest (qemu-io, into the active volume) in
  256 KiB runs, then a job that reads only the new layer's extents (a shallow transfer's
  ``hole: false``) and deletes the previous snapshot;
- full read: the whole disk through an image transfer, the job's threads and chunk size,
  nothing else: what "reading the disk" costs on this peer.

The incremental snapshot is restored and checked bit-exact. Targets (issue 12): the incremental
reads <= 2x the changed bytes and finishes >= 20x faster than the full read. Nothing is
asserted: the machine is shared.
"""

import contextlib
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.http import Client  # noqa: E402
from agent.ovirt import transfers  # noqa: E402
from agent.ovirt.job import OVirtJob  # noqa: E402
from agent.ovirt.session import engine_session  # noqa: E402
from agent.ranged import RangeDisk  # noqa: E402
from bench.appliance import HEADER, Appliance, row, setup, timed_read  # noqa: E402
from bench.replication_server import running_portal  # noqa: E402
from bench.store import apply_change, generate_image, mib  # noqa: E402

SETUP = """
from clouds.services import enrollment_token_create
from clouds.services.clouds import cloud_create
from tenants.models import Customer
customer = Customer.objects.get(slug="bench")
cloud = cloud_create(customer, platform="ovirt", name="engine", endpoint="{endpoint}",
                     login="admin@internal", password="secret",
                     options={{"discovery_level": "cloud"}})
print(enrollment_token_create(customer, platform="ovirt", cloud=cloud).text)
"""


def full_read(appliance, engine, size: int, chunk: int, threads: int) -> float:
    """The whole disk at its newest snapshot, through an image transfer of its chain."""
    (snap,) = engine.snapshots["vm1"]
    volume = snap["volumes"]["d1"]
    with engine_session(appliance.cloud) as session:
        transfer = transfers.start(session.system, volume, shallow=False, what="the disk")
        client = Client(transfer.base, None, retries=2, pool_size=threads * 2 + 2)
        try:
            reader = RangeDisk(client, transfer.path, "d1", size, source="the disk")
            return timed_read(reader, size, chunk, threads)
        finally:
            client.close()
            transfers.finalize(transfer, "the disk")


def main() -> None:
    args, size, tmp = setup(__doc__.split("\n\n")[0], "bench-ovirt-")
    from tests.imageio_support import running_imageio
    from tests.ovirt_storage import Storage
    from tests.ovirt_support import Model, running_engine

    model = Model()
    model.vms = [{"id": "vm1", "name": "web1", "cluster": "cl1", "host": "h1",
                  "status": "up", "disks": ["d1"]}]  # fmt: skip
    model.disks = [{"id": "d1", "alias": "web1_Disk1", "size": size}]
    try:
        image = tmp / "disk.img"
        mix = generate_image(image, size, seed=11)
        changed = tmp / "changed.img"
        changes = apply_change(image, changed, size, seed=12, fraction=args.change)
        with running_imageio(tmp / "imageio") as imageio:
            storage = Storage(tmp / "volumes", imageio, {"d1": size}, initial={"d1": image})
            try:
                with (
                    running_engine(model=model, storage=storage) as engine,
                    running_portal(tmp / "portal") as portal,
                ):
                    portal.customer("bench")
                    token = portal.manage(
                        "shell", "-v", "0", "-c", SETUP.format(endpoint=engine.url)
                    )
                    appliance = Appliance(portal, tmp, token, "ovirt", args.threads, "vm-self")
                    try:
                        appliance.protect("web1")
                        print(
                            f"oVirt replication bench: {mib(size)} MiB disk ({mix['runs']} "
                            f"runs: {mib(mix['zero'])} MiB zeros, {mib(mix['text'])} text, "
                            f"{mib(mix['random'])} random), chunk {args.chunk_size // 1024} "
                            f"KiB, {args.threads} threads, {portal.database}"
                        )
                        full_s, full = appliance.job(OVirtJob)
                        started = time.perf_counter()
                        with open(changed, "rb") as f:
                            for offset, length in changes:
                                f.seek(offset)
                                storage.write("d1", offset, f.read(length))
                        write_s = time.perf_counter() - started
                        changed_bytes = sum(length for _, length in changes)
                        incr_s, incr = appliance.job(OVirtJob)
                        exact = appliance.restored_matches(incr.snapshots[0], changed, tmp)
                        read_s = full_read(appliance, engine, size, args.chunk_size, args.threads)
                    finally:
                        appliance.close()
            finally:
                storage.close()
        print(HEADER)
        print(row("full replication", full_s, full, note="non-zero extents"))
        note = f"changed {mib(changed_bytes)} MiB (the guest wrote it in {write_s:.1f} s)"
        print(row("incremental (new layer)", incr_s, incr, note=note))
        print(row("full read of the disk", read_s, size=size, note="image transfer only"))
        ratio = incr.bytes_read / changed_bytes if changed_bytes else 0
        speedup = read_s / incr_s if incr_s else 0
        print(
            f"incremental read {ratio:.2f}x the changed bytes (target <= 2x); {speedup:.1f}x "
            f"faster than a full read (target >= 20x); restore of the incremental "
            f"{'bit-exact' if exact else 'DIFFERENT'}"
        )
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
