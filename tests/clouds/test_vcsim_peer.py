"""vcsim as a replication peer for VMware CBT replication (scripts/vcsim/simulator/acura_peer.go),
driven with pyvmomi the way a replicator would: disks of a real size readable through the
datastore /folder interface with Range requests, a guest that writes into them, snapshots that
freeze them, change block tracking (QueryChangedDiskAreas, paged), quiesce failures, datastore
free space, snapshot removal that consolidates and keeps the other snapshots intact."""

import os
import re
import ssl
import urllib.parse
import urllib.request

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from tests.vsphere_support import disk_read, guest_write, running_vcsim

pytestmark = pytest.mark.vsphere

MIB = 1 << 20
BLOCK = 64 << 10
DISK_MIB = 40  # three QueryChangedDiskAreas pages of 16 MiB: 16 + 16 + 8
VM_NAME = "DC0_H0_VM0"


class Peer:
    """A running vcsim, a pyvmomi session to it and the VM under test with its one disk."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.si = SmartConnect(
            host=host, port=port, user="user", pwd="pass", disableSslCertValidation=True
        )
        self.vm = self.si.content.searchIndex.FindByInventoryPath(f"DC0/vm/{VM_NAME}")
        (self.disk,) = disks_of(self.vm.config)

    def write(self, offset, data):
        guest_write(self.host, self.port, self.vm._moId, self.disk.key, offset, data)

    def read(self, offset, length):
        return disk_read(self.host, self.port, self.vm._moId, self.disk.key, offset, length)

    def folder_read(self, backing, start, length):
        """Bytes of a disk layer's flat file through /folder, as a Range request (206)."""
        datastore, _, rel = backing.fileName.partition("] ")
        flat = rel.removesuffix(".vmdk") + "-flat.vmdk"
        query = urllib.parse.urlencode({"dcPath": "DC0", "dsName": datastore.lstrip("[")})
        span = f"bytes={start}-{start + length - 1}"
        request = urllib.request.Request(
            f"https://{self.host}:{self.port}/folder/{flat}?{query}",
            headers={"Cookie": self.si._stub.cookie, "Range": span},
        )
        context = ssl._create_unverified_context()
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            assert response.status == 206
            return response.read()

    def snapshot(self, name, quiesce=False):
        WaitForTask(self.vm.CreateSnapshot_Task(name, "", False, quiesce))
        return self.vm.snapshot.currentSnapshot

    def set_cbt(self, on):
        WaitForTask(self.vm.ReconfigVM_Task(vim.vm.ConfigSpec(changeTrackingEnabled=on)))

    def changed(self, snapshot, change_id, start=0):
        return self.vm.QueryChangedDiskAreas(
            snapshot=snapshot, deviceKey=self.disk.key, startOffset=start, changeId=change_id
        )

    def all_changed(self, snapshot, change_id):
        """Every changed area of the disk, looping over the pages as a client must."""
        areas, offset, pages = [], 0, 0
        while offset < self.disk.capacityInBytes:
            info = self.changed(snapshot, change_id, offset)
            assert info.startOffset == offset and info.length > 0
            areas += [(a.start, a.length) for a in info.changedArea]
            offset += info.length
            pages += 1
        assert offset == self.disk.capacityInBytes
        return areas, pages


def disks_of(config):
    return [d for d in config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


def backing_of(snapshot):
    (disk,) = disks_of(snapshot.config)
    return disk.backing


def live_backing(peer):
    (disk,) = disks_of(peer.vm.config)
    return disk.backing


def blocks(*spans):
    """The 64 KiB-aligned areas covering (offset, length) spans, merged, as the peer answers."""
    covered = sorted(
        {b for off, n in spans for b in range(off // BLOCK, (off + n - 1) // BLOCK + 1)}
    )
    areas = []
    for b in covered:
        if areas and areas[-1][0] + areas[-1][1] == b * BLOCK:
            areas[-1] = (areas[-1][0], areas[-1][1] + BLOCK)
        else:
            areas.append((b * BLOCK, BLOCK))
    return areas


@pytest.fixture
def peer():
    with running_vcsim(disk_mib=DISK_MIB, quiesce_fail=["DC0_H0_VM1"]) as (host, port):
        p = Peer(host, port)
        try:
            yield p
        finally:
            Disconnect(p.si)


def test_disks_have_the_size_asked_and_their_content_is_readable_through_folder(peer):
    assert peer.disk.capacityInKB == DISK_MIB * 1024
    assert peer.disk.capacityInBytes == DISK_MIB * MIB
    backing = live_backing(peer)
    assert backing.fileName == f"[LocalDS_0] {VM_NAME}/disk1.vmdk"
    assert peer.folder_read(backing, DISK_MIB * MIB - 4096, 4096) == bytes(4096)

    data = os.urandom(3 * BLOCK + 17)
    peer.write(5 * MIB + 123, data)

    assert peer.read(5 * MIB + 123, len(data)) == data
    assert peer.folder_read(backing, 5 * MIB + 123, len(data)) == data
    assert peer.folder_read(backing, 5 * MIB, 123) == bytes(123)


def test_guest_write_refuses_bad_requests(peer):
    vm, key = peer.vm._moId, peer.disk.key
    with pytest.raises(AssertionError, match="400: write past the disk's end"):
        guest_write(peer.host, peer.port, vm, key, DISK_MIB * MIB - 1, b"xx")
    with pytest.raises(AssertionError, match="400: no virtual machine"):
        guest_write(peer.host, peer.port, "vm-nope", key, 0, b"x")
    with pytest.raises(AssertionError, match=r"400: .* has no disk with device key 99"):
        guest_write(peer.host, peer.port, vm, 99, 0, b"x")
    with pytest.raises(AssertionError, match="400: offset must be"):
        guest_write(peer.host, peer.port, vm, key, -1, b"x")
    peer.write(DISK_MIB * MIB - 2, b"ok")  # the very end is fine
    assert peer.read(DISK_MIB * MIB - 2, 2) == b"ok"


def test_a_snapshot_freezes_the_disk_and_the_guest_writes_on_into_a_new_layer(peer):
    before = os.urandom(2 * BLOCK)
    peer.write(MIB, before)

    snap = peer.snapshot("s1")
    frozen = backing_of(snap)
    live = live_backing(peer)
    assert frozen.fileName == f"[LocalDS_0] {VM_NAME}/disk1.vmdk"
    assert live.fileName == f"[LocalDS_0] {VM_NAME}/disk1-000001.vmdk"
    assert live.parent.fileName == frozen.fileName

    after = os.urandom(BLOCK)
    peer.write(MIB + 100, after)

    assert peer.folder_read(frozen, MIB, 2 * BLOCK) == before
    expected = before[:100] + after + before[100 + BLOCK :]
    assert peer.read(MIB, 2 * BLOCK) == expected
    assert peer.folder_read(live, MIB, 2 * BLOCK) == expected


def test_change_tracking_answers_allocated_and_changed_areas_page_by_page(peer):
    assert not peer.vm.config.changeTrackingEnabled
    peer.write(0, b"boot")
    peer.set_cbt(True)
    assert peer.vm.config.changeTrackingEnabled
    change_id = live_backing(peer).changeId
    assert re.fullmatch(r"52( [0-9a-f]{2}){7}-[0-9a-f]{2}( [0-9a-f]{2}){7}/0", change_id)
    epoch = change_id.rpartition("/")[0]

    peer.write(3 * MIB + 5, os.urandom(BLOCK))  # two blocks
    peer.write(20 * MIB, b"x" * 10)  # second page
    peer.write(DISK_MIB * MIB - 1, b"z")  # last byte, third page
    s1 = peer.snapshot("s1")
    s1_id = backing_of(s1).changeId
    assert s1_id.startswith(epoch + "/") and s1_id == live_backing(peer).changeId

    first = peer.changed(s1, "*")
    assert (first.startOffset, first.length) == (0, 16 * MIB)
    allocated, pages = peer.all_changed(s1, "*")
    assert pages == 3
    assert allocated == blocks(
        (0, 4), (3 * MIB + 5, BLOCK), (20 * MIB, 10), (DISK_MIB * MIB - 1, 1)
    )

    peer.write(3 * MIB, b"again")  # a block already written
    peer.write(30 * MIB + BLOCK - 1, b"ab")  # straddles two blocks
    assert live_backing(peer).changeId != s1_id
    s2 = peer.snapshot("s2")
    since, _ = peer.all_changed(s2, s1_id)
    assert since == blocks((3 * MIB, 5), (30 * MIB + BLOCK - 1, 2))
    assert peer.all_changed(s2, backing_of(s2).changeId)[0] == []
    # s1's answers are those of s1's time, whatever was written since
    assert peer.all_changed(s1, "*")[0] == allocated


def test_change_tracking_refuses_unknown_ids_and_forgets_them_when_restarted(peer):
    with pytest.raises(vim.fault.FileFault):  # CBT off
        peer.changed(None, "*")
    peer.set_cbt(True)
    peer.write(0, b"a")
    s1 = peer.snapshot("s1")
    old_id = backing_of(s1).changeId
    for bogus in ("52 00 00 00 00 00 00 00-00 00 00 00 00 00 00 00/1", "nonsense", old_id + "9"):
        with pytest.raises(vim.fault.FileFault):
            peer.changed(s1, bogus)
    with pytest.raises(vmodl.fault.InvalidArgument):
        peer.changed(s1, "*", start=DISK_MIB * MIB)

    peer.set_cbt(False)
    assert not peer.vm.config.changeTrackingEnabled
    assert not live_backing(peer).changeId
    peer.set_cbt(True)
    new_id = live_backing(peer).changeId
    assert new_id.endswith("/0") and new_id.rpartition("/")[0] != old_id.rpartition("/")[0]
    peer.write(MIB, b"b")
    s2 = peer.snapshot("s2")
    with pytest.raises(vim.fault.FileFault):
        peer.changed(s2, old_id)
    with pytest.raises(vim.fault.FileFault):  # a snapshot of the old epoch
        peer.changed(s1, "*")
    assert peer.all_changed(s2, new_id)[0] == blocks((MIB, 1))
    assert peer.all_changed(s2, "*")[0] == blocks((0, 1), (MIB, 1))


def test_a_quiesced_snapshot_of_a_vm_set_to_fail_faults_and_creates_nothing(peer):
    vm = peer.si.content.searchIndex.FindByInventoryPath("DC0/vm/DC0_H0_VM1")
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        WaitForTask(vm.CreateSnapshot_Task("q", "", False, True))
    props = retrieve(peer.si, vm, ["snapshot", "layoutEx.file"])
    assert "snapshot" not in props
    assert not any("vmsn" in f.name for f in props["layoutEx.file"])

    WaitForTask(vm.CreateSnapshot_Task("plain", "", False, False))
    assert vm.snapshot.rootSnapshotList[0].name == "plain"
    assert peer.snapshot("quiesced elsewhere", quiesce=True)  # other VMs quiesce fine


def retrieve(si, obj, paths):
    """Properties of one object through RetrievePropertiesEx (unset ones are left out)."""
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=paths)],
    )
    options = vmodl.query.PropertyCollector.RetrieveOptions()
    result = si.content.propertyCollector.RetrievePropertiesEx([spec], options)
    return {p.name: p.val for o in result.objects for p in o.propSet}


def test_datastores_report_the_free_percentage_asked():
    with running_vcsim(datastore_free_percent=12.5) as (host, port):
        si = SmartConnect(host=host, port=port, user="u", pwd="p", disableSslCertValidation=True)
        try:
            (ds,) = si.content.rootFolder.childEntity[0].datastore
            summary = ds.summary
            assert summary.capacity > 1 << 30
            assert summary.freeSpace == int(summary.capacity * 12.5 / 100)
            # (RefreshDatastore cannot be tested: govmomi 0.24.2 answers it with no body)
        finally:
            Disconnect(si)


def test_the_page_size_of_changed_areas_can_be_set():
    with running_vcsim(disk_mib=10, cbt_page_mib=4) as (host, port):
        peer = Peer(host, port)
        try:
            peer.set_cbt(True)
            peer.write(9 * MIB, b"end")
            snap = peer.snapshot("s1")
            areas, pages = peer.all_changed(snap, "*")
            assert pages == 3 and areas == blocks((9 * MIB, 3))
            assert peer.changed(snap, "*", start=8 * MIB).length == 2 * MIB
        finally:
            Disconnect(peer.si)


def test_removing_the_newest_snapshot_consolidates_and_the_vm_reads_the_same(peer):
    assert peer.vm.snapshot is None  # lazy read of an unset property does not break
    base = os.urandom(BLOCK)
    peer.write(0, base)
    snap = peer.snapshot("s1")
    newer = os.urandom(BLOCK)
    peer.write(BLOCK, newer)

    WaitForTask(snap.RemoveSnapshot_Task(removeChildren=False))

    assert peer.vm.snapshot is None
    live = live_backing(peer)
    assert live.fileName == f"[LocalDS_0] {VM_NAME}/disk1.vmdk" and live.parent is None
    assert peer.read(0, 2 * BLOCK) == base + newer
    assert peer.folder_read(live, 0, 2 * BLOCK) == base + newer
    peer.write(2 * BLOCK, b"still writable")
    assert peer.read(2 * BLOCK, 14) == b"still writable"


def test_removing_an_older_snapshot_keeps_the_newer_one_intact(peer):
    first, second, third = os.urandom(BLOCK), os.urandom(BLOCK), os.urandom(BLOCK)
    peer.write(0, first)
    s1 = peer.snapshot("s1")
    peer.write(0, second)
    s2 = peer.snapshot("s2")
    peer.write(0, third)
    s3 = peer.snapshot("s3")
    peer.write(0, b"live")

    WaitForTask(s1.RemoveSnapshot_Task(removeChildren=False))

    assert [s.name for s in peer.vm.snapshot.rootSnapshotList] == ["s2"]
    assert peer.folder_read(backing_of(s2), 0, BLOCK) == second
    assert peer.folder_read(backing_of(s3), 0, BLOCK) == third
    assert backing_of(s3).parent.fileName == backing_of(s2).fileName
    assert live_backing(peer).parent.fileName == backing_of(s3).fileName
    assert peer.read(0, 4) == b"live"

    WaitForTask(s3.RemoveSnapshot_Task(removeChildren=False))  # the middle one now
    assert peer.folder_read(backing_of(s2), 0, BLOCK) == second
    assert peer.read(0, BLOCK) == b"live" + third[4:]

    WaitForTask(peer.vm.RemoveAllSnapshots_Task())
    assert peer.vm.snapshot is None
    assert live_backing(peer).fileName == f"[LocalDS_0] {VM_NAME}/disk1.vmdk"
    assert peer.read(0, BLOCK) == b"live" + third[4:]


def test_power_off_and_on_still_work(peer):
    WaitForTask(peer.vm.PowerOffVM_Task())
    assert peer.vm.runtime.powerState == "poweredOff"
    with pytest.raises(vim.fault.InvalidPowerState):
        WaitForTask(peer.vm.PowerOffVM_Task())
    WaitForTask(peer.vm.PowerOnVM_Task())
    assert peer.vm.runtime.powerState == "poweredOn"


def test_growing_a_disk_extends_its_image_and_restarts_its_change_tracking(peer):
    peer.set_cbt(True)
    peer.write(0, b"before")
    old_id = live_backing(peer).changeId
    disk = peer.disk
    disk.capacityInKB, disk.capacityInBytes = (DISK_MIB + 8) * 1024, (DISK_MIB + 8) * MIB
    change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)
    WaitForTask(peer.vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[change])))
    (grown,) = disks_of(peer.vm.config)
    assert grown.capacityInBytes == (DISK_MIB + 8) * MIB
    peer.write((DISK_MIB + 7) * MIB, b"new tail")
    assert peer.read(0, 6) == b"before"
    new_id = grown.backing.changeId
    assert new_id and new_id.split("/")[0] != old_id.split("/")[0]  # a new epoch
    snap = peer.snapshot("s1")
    with pytest.raises(vim.fault.FileFault):
        peer.changed(snap, old_id)
    shrink = vim.vm.device.VirtualDeviceSpec(operation="edit", device=grown)
    grown.capacityInKB, grown.capacityInBytes = 1024, MIB
    with pytest.raises(vmodl.fault.InvalidArgument):
        WaitForTask(peer.vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[shrink])))


def test_a_disk_added_gets_an_image_of_its_size():
    with running_vcsim(disk_mib=8) as (host, port):
        peer = Peer(host, port)
        try:
            backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                diskMode="persistent", fileName="[LocalDS_0]", thinProvisioned=True
            )
            device = vim.vm.device.VirtualDisk(
                key=-1, controllerKey=peer.disk.controllerKey, unitNumber=1,
                capacityInKB=4096, backing=backing,
            )  # fmt: skip
            change = vim.vm.device.VirtualDeviceSpec(
                operation="add", fileOperation="create", device=device
            )
            WaitForTask(peer.vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[change])))
            (added,) = [d for d in disks_of(peer.vm.config) if d.key != peer.disk.key]
            assert added.capacityInBytes == 4 * MIB
            guest_write(host, port, peer.vm._moId, added.key, 4 * MIB - 3, b"end")
            assert peer.folder_read(added.backing, 4 * MIB - 3, 3) == b"end"
        finally:
            Disconnect(peer.si)


def test_snapshot_removals_fail_as_often_as_asked_then_work():
    with running_vcsim(disk_mib=2, snapshot_remove_fail=1) as (host, port):
        peer = Peer(host, port)
        try:
            snap = peer.snapshot("s1")
            with pytest.raises(vim.fault.FileLocked):
                WaitForTask(snap.RemoveSnapshot_Task(removeChildren=False))
            assert peer.vm.snapshot.rootSnapshotList[0].name == "s1"
            WaitForTask(snap.RemoveSnapshot_Task(removeChildren=False))
            assert peer.vm.snapshot is None
        finally:
            Disconnect(peer.si)
