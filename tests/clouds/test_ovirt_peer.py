"""The in-test oVirt engine as a replication peer, driven with ovirtsdk4 the way a replicator
does (/work/shared/docs/ovirt-api.md §4-6, §9): snapshots that freeze each disk into a real
qcow2 layer, disk snapshots with their parents, image transfers served by the real
ovirt-imageio daemon from qemu-nbd exports (shallow: only the layer's own data, ``hole:false``
exactly where the guest wrote after the previous snapshot), finalize, and snapshot removal that
merges layers with ``qemu-img commit`` and keeps every point in time readable."""

import json
import os
import time
import urllib.error
import urllib.request

import ovirtsdk4
import ovirtsdk4.types as types
import pytest

from tests.imageio_support import running_imageio
from tests.ovirt_storage import Storage
from tests.ovirt_support import Model, running_engine

MIB = 1 << 20
SIZE = 16 * MIB


def small_model() -> Model:
    model = Model()
    model.vms = [{"id": "vm1", "name": "web1", "cluster": "cl1", "host": "h1", "status": "up",
                  "disks": ["d1"]}]  # fmt: skip
    model.disks = [{"id": "d1", "alias": "web1_Disk1", "size": SIZE}]
    return model


@pytest.fixture
def peer(tmp_path):
    with running_imageio(tmp_path / "imageio") as imageio:
        storage = Storage(tmp_path / "volumes", imageio, {"d1": SIZE})
        try:
            with running_engine(model=small_model(), storage=storage) as engine:
                connection = ovirtsdk4.Connection(
                    url=engine.url, username="admin@internal", password="secret", timeout=10
                )
                try:
                    yield engine, storage, connection
                finally:
                    connection.close()
        finally:
            storage.close()


def snapshot(connection, description="repl"):
    service = connection.system_service().vms_service().vm_service("vm1").snapshots_service()
    snap = service.add(
        types.Snapshot(description=description, persist_memorystate=False,
                       disk_attachments=[types.DiskAttachment(disk=types.Disk(id="d1"))])
    )  # fmt: skip
    assert snap.snapshot_status == types.SnapshotStatus.LOCKED
    deadline = time.monotonic() + 10
    while service.snapshot_service(snap.id).get().snapshot_status != types.SnapshotStatus.OK:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (disk,) = service.snapshot_service(snap.id).disks_service().list()
    return snap, disk.image_id


def transfer(connection, volume, shallow):
    transfers = connection.system_service().image_transfers_service()
    started = transfers.add(
        types.ImageTransfer(direction=types.ImageTransferDirection.DOWNLOAD,
                            format=types.DiskFormat.RAW, shallow=shallow,
                            snapshot=types.DiskSnapshot(id=volume))
    )  # fmt: skip
    service = transfers.image_transfer_service(started.id)
    while (current := service.get()).phase == types.ImageTransferPhase.INITIALIZING:
        time.sleep(0.05)
    assert current.phase == types.ImageTransferPhase.TRANSFERRING
    return service, current.transfer_url


def get(url, **headers):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return r.status, r.read()


def test_snapshots_layers_transfers_and_extents(peer):
    _engine, storage, connection = peer
    first = os.urandom(100_000)
    storage.write("d1", 3 * MIB, first)
    snap1, vol1 = snapshot(connection)
    storage.write("d1", 9 * MIB + 5, b"after the first snapshot")  # into the new layer
    snap2, vol2 = snapshot(connection)
    assert vol1 != vol2

    listed = connection.system_service().storage_domains_service().storage_domain_service(
        "sd1").disk_snapshots_service().list()  # fmt: skip
    parents = {d.id: (d.parent.id if d.parent else None, d.snapshot.id) for d in listed}
    assert parents[vol2] == (vol1, snap2.id) and parents[vol1] == (None, snap1.id)

    # The whole disk at the second snapshot: its volume with the chain below.
    service, url = transfer(connection, vol2, shallow=False)
    status, body = get(url, Range=f"bytes={3 * MIB}-{3 * MIB + len(first) - 1}")
    assert status == 206 and body == first
    status, body = get(url, Range=f"bytes={9 * MIB + 5}-{9 * MIB + 28}")
    assert body == b"after the first snapshot"
    service.finalize()
    # Its own layer alone: data only where the guest wrote between the snapshots.
    service, url = transfer(connection, vol2, shallow=True)
    extents = json.loads(get(url + "/extents")[1])
    written = [(e["start"], e["length"]) for e in extents if not e["hole"]]
    assert written == [(9 * MIB, 64 * 1024)]  # one 64 KiB qcow2 cluster
    service.finalize()
    with pytest.raises(urllib.error.HTTPError) as gone:  # finalized: the ticket is removed
        get(url + "/extents")
    assert gone.value.code == 403


def test_deleting_a_snapshot_merges_it_and_keeps_the_newer_point(peer):
    _engine, storage, connection = peer
    storage.write("d1", 0, b"A" * 65536)
    snap1, _vol1 = snapshot(connection)
    storage.write("d1", 65536, b"B" * 65536)
    snap2, vol2 = snapshot(connection)
    storage.write("d1", 0, b"C" * 10)  # the live disk moves on

    snaps = connection.system_service().vms_service().vm_service("vm1").snapshots_service()
    snaps.snapshot_service(snap1.id).remove()

    assert [s.id for s in snaps.list() if s.snapshot_type != types.SnapshotType.ACTIVE] == [
        snap2.id
    ]
    (disk,) = snaps.snapshot_service(snap2.id).disks_service().list()
    assert disk.image_id == vol2  # the merged volume keeps the newer one's id
    service, url = transfer(connection, vol2, shallow=False)
    _status, body = get(url, Range="bytes=0-131071")
    assert body == b"A" * 65536 + b"B" * 65536  # the second point, intact
    service.finalize()
    assert storage.content("d1")[:10] == b"C" * 10
