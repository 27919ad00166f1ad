// acura: added to govmomi 0.24.2's package simulator by scripts/build-vcsim (go build -overlay).
//
// Makes vcsim a replication peer for VMware CBT replication tests. Govmomi's simulator gives a
// VM's disk two empty files, snapshots that freeze nothing and no change tracking; this file
// adds (called from hooks marked "acura:" in the patched copies beside it):
//
//   - disks of a real size (-disk-mib): capacityInKB/capacityInBytes and a sparse flat file;
//   - a test-only "guest" that writes into / reads from a disk's live layer over HTTP
//     (PUT /acura/guest-write, GET /acura/disk-read; see acuraServeGuestWrite), and a switch
//     that makes /folder reads fail for a while (PUT /acura/folder-faults);
//   - snapshots that freeze each disk: the layer the VM wrote to until then stays as it is
//     (named in the snapshot's config.hardware.device backing) and the VM writes on into a new
//     layer "<disk>-000001.vmdk" whose backing's parent is the frozen one;
//   - change block tracking: per-disk change ids "<epoch>/<sequence>" in backing.changeId and
//     QueryChangedDiskAreas (64 KiB granularity, paged by startOffset);
//   - consolidation when snapshots are removed, -quiesce-fail, -datastore-free-percent and
//     -snapshot-remove-fail.
//
// The disk model, chosen to be simple and obviously correct rather than space-efficient:
// every layer is a complete flat image ("<name>-flat.vmdk", sparse, the size of the disk), so
// /folder serves a frozen layer bit-exact as it was at snapshot time with no delta parsing.
// A snapshot copies the live image (holes stay holes) into the new live layer. Removing a
// snapshot merges the layer above it into its layer the way ESXi does: the upper layer's image
// (already complete) is renamed over the removed one, so the upper snapshot - or the VM - now
// names the older file, and every other snapshot's file and content stay untouched. Layers
// are kept in creation order; reverting to a snapshot does not restore disk content.
//
// Change tracking: each layer has a map of the 64 KiB blocks ever written to it (inherited by
// the layer above) with the sequence number of the block's last write. Every guest write takes
// the next sequence number while CBT is on (0 while off), so the live change id is always
// "<epoch>/<last sequence>" and a frozen layer's change id is the one at snapshot time.
// Switching CBT on picks a fresh random epoch (older ids are then unknown: FileFault).
//
// All per-VM state is guarded by the VM's lock (Map.WithLock), which the SOAP handlers of VM
// methods already hold; acuraMu guards only the map of disks.

package simulator

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// AcuraPeer is set by the launcher (scripts/vcsim/main.go) before Model.Create.
var AcuraPeer = struct {
	DiskMiB              int64           // > 0: every VM disk's capacity in MiB
	QuiesceFail          map[string]bool // VM names whose quiesced snapshots fail
	DatastoreFreePercent float64         // >= 0: summary.freeSpace = this % of summary.capacity
	CBTPageMiB           int64           // disk span one QueryChangedDiskAreas answer covers
	RemoveFailures       int64           // the next this many snapshot removals fail (FileLocked)
}{DatastoreFreePercent: -1, CBTPageMiB: 16}

const acuraBlock = 64 << 10 // change tracking granularity

type acuraLayer struct {
	file     string                       // descriptor path, "[LocalDS_0] VM/disk1-000001.vmdk"
	snapshot types.ManagedObjectReference // the snapshot that froze it; zero for the live layer
	blocks   map[int64]int64              // block index -> sequence of its last write (0: untracked)
	epoch    string                       // CBT epoch ("": CBT off)
	seq      int64                        // last sequence number handed out
}

func (l *acuraLayer) changeID() string {
	if l.epoch == "" {
		return ""
	}
	return fmt.Sprintf("%s/%d", l.epoch, l.seq)
}

type acuraDisk struct {
	capacity int64
	stem     string        // "[LocalDS_0] VM/disk1": delta layers are stem-NNNNNN.vmdk
	next     int           // number of the next delta layer
	layers   []*acuraLayer // oldest first; the last one is live
}

func (d *acuraDisk) live() *acuraLayer { return d.layers[len(d.layers)-1] }

var (
	acuraMu    sync.Mutex
	acuraState = map[string]*acuraDisk{} // "vm-42/204"
)

// AcuraPeerInstall applies -disk-mib and -datastore-free-percent to the model just created and
// registers the test-only guest endpoints. Call after Model.Create, before NewServer.
func AcuraPeerInstall(m *Model) error {
	if AcuraPeer.DiskMiB > 0 {
		for _, e := range Map.All("VirtualMachine") {
			vm := e.(*VirtualMachine)
			for _, disk := range acuraVMDisks(vm) {
				if fault := acuraResize(vm, disk, AcuraPeer.DiskMiB<<20); fault != nil {
					return fmt.Errorf("sizing %s's disk: %T", vm.Name, fault)
				}
			}
			vm.updateDiskLayouts()
		}
	}
	for _, e := range Map.All("Datastore") {
		acuraDatastoreSpace(e.(*Datastore))
	}
	m.Service.HandleFunc("/acura/guest-write", acuraServeGuestWrite)
	m.Service.HandleFunc("/acura/disk-read", acuraServeDiskRead)
	m.Service.HandleFunc("/acura/folder-faults", acuraServeFolderFaults)
	// Each VM folder's /folder reads go through the fault switch (a pattern more specific
	// than govmomi's "/folder/", which serves them).
	for _, e := range Map.All("VirtualMachine") {
		m.Service.HandleFunc(folderPrefix+e.(*VirtualMachine).Name+"/", acuraFolderHandler(m.Service))
	}
	return nil
}

// acuraFolderFaults: after the next `after` GETs of /folder, `count` GETs answer 503, as a
// datastore that stalls or a host that drops connections would (PUT /acura/folder-faults).
var acuraFolderFaults struct{ after, count int64 } // guarded by acuraMu

func acuraFolderHandler(s *Service) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && acuraFolderFails() {
			http.Error(w, "simulated datastore failure (acura folder-faults)", http.StatusServiceUnavailable)
			return
		}
		s.ServeDatastore(w, r)
	}
}

func acuraFolderFails() bool {
	acuraMu.Lock()
	defer acuraMu.Unlock()
	if acuraFolderFaults.after > 0 {
		acuraFolderFaults.after--
		return false
	}
	if acuraFolderFaults.count > 0 {
		acuraFolderFaults.count--
		return true
	}
	return false
}

// acuraServeFolderFaults: PUT /acura/folder-faults?after=K&count=N (test only).
func acuraServeFolderFaults(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "PUT only", http.StatusMethodNotAllowed)
		return
	}
	after, err1 := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	count, err2 := strconv.ParseInt(r.URL.Query().Get("count"), 10, 64)
	if err1 != nil || err2 != nil || after < 0 || count < 0 {
		http.Error(w, "after and count must be whole numbers >= 0", http.StatusBadRequest)
		return
	}
	acuraMu.Lock()
	acuraFolderFaults.after, acuraFolderFaults.count = after, count
	acuraMu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// acuraDatastoreSpace: with -datastore-free-percent, free space is that share of the capacity.
func acuraDatastoreSpace(ds *Datastore) {
	if AcuraPeer.DatastoreFreePercent < 0 {
		return
	}
	if ds.Summary.Capacity <= 0 {
		ds.Summary.Capacity = 1 << 40
	}
	ds.Summary.FreeSpace = int64(float64(ds.Summary.Capacity) * AcuraPeer.DatastoreFreePercent / 100)
	info := ds.Info.GetDatastoreInfo()
	info.FreeSpace = ds.Summary.FreeSpace
	info.MaxFileSize = ds.Summary.FreeSpace
	info.MaxMemoryFileSize = ds.Summary.FreeSpace
}

func acuraQuiesceFails(vm *VirtualMachine) bool { return AcuraPeer.QuiesceFail[vm.Name] }

// acuraRemovalFault: with -snapshot-remove-fail N the next N snapshot removals fail, as when
// a backup of another product holds the disk files open; later removals work again.
func acuraRemovalFault(snapshot string) types.BaseMethodFault {
	acuraMu.Lock()
	defer acuraMu.Unlock()
	if AcuraPeer.RemoveFailures <= 0 {
		return nil
	}
	AcuraPeer.RemoveFailures--
	return &types.FileLocked{FileFault: types.FileFault{File: snapshot + " (simulated: -snapshot-remove-fail)"}}
}

func acuraChangeTrackingOn(vm *VirtualMachine) bool {
	return vm.Config != nil && isTrue(vm.Config.ChangeTrackingEnabled)
}

func acuraVMDisks(vm *VirtualMachine) []*types.VirtualDisk {
	var disks []*types.VirtualDisk
	for _, d := range object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
		if _, ok := d.(*types.VirtualDisk).Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
			disks = append(disks, d.(*types.VirtualDisk))
		}
	}
	return disks
}

func acuraFindDisk(vm *VirtualMachine, key int32) *types.VirtualDisk {
	for _, d := range acuraVMDisks(vm) {
		if d.Key == key {
			return d
		}
	}
	return nil
}

func acuraCapacity(disk *types.VirtualDisk) int64 {
	if disk.CapacityInBytes > 0 {
		return disk.CapacityInBytes
	}
	return disk.CapacityInKB * 1024
}

// acuraFlatPath is the host path of a layer's flat image ("[ds] VM/disk1.vmdk" ->
// <datastore folder>/VM/disk1-flat.vmdk) or of its descriptor (flat=false).
func acuraFlatPath(vm *VirtualMachine, file string, flat bool) (string, types.BaseMethodFault) {
	p, fault := parseDatastorePath(file)
	if fault != nil {
		return "", fault
	}
	name := p.Path
	if flat {
		name = strings.TrimSuffix(name, ".vmdk") + "-flat.vmdk"
	}
	return path.Join(vm.findDatastore(p.Datastore).Info.GetDatastoreInfo().Url, name), nil
}

func acuraFault(err error, file string) types.BaseMethodFault {
	return &types.FileFault{File: file, VimFault: types.VimFault{MethodFault: types.MethodFault{
		FaultMessage: []types.LocalizableMessage{{Key: "acura", Message: err.Error()}}}}}
}

// acuraResize gives a disk a capacity and a sparse flat image of that size.
func acuraResize(vm *VirtualMachine, disk *types.VirtualDisk, size int64) types.BaseMethodFault {
	disk.CapacityInBytes = size
	disk.CapacityInKB = size / 1024
	if info := disk.DeviceInfo.GetDescription(); info != nil {
		info.Summary = fmt.Sprintf("%s KB", numberToString(disk.CapacityInKB, ','))
	}
	file := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo).FileName
	flat, fault := acuraFlatPath(vm, file, true)
	if fault != nil {
		return fault
	}
	if err := os.Truncate(flat, size); err != nil {
		return acuraFault(err, file)
	}
	return acuraWriteDescriptor(vm, file, size)
}

// acuraWriteDescriptor writes a layer's descriptor: each layer is a standalone flat image.
func acuraWriteDescriptor(vm *VirtualMachine, file string, size int64) types.BaseMethodFault {
	p, fault := acuraFlatPath(vm, file, false)
	if fault != nil {
		return fault
	}
	flat := strings.TrimSuffix(path.Base(p), ".vmdk") + "-flat.vmdk"
	text := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"+
		"createType=\"monolithicFlat\"\n\n# Extent description\nRW %d FLAT \"%s\" 0\n", size/512, flat)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		return acuraFault(err, file)
	}
	return nil
}

// acuraDiskOf is the layer state of a VM disk, started from its current backing on first use.
func acuraDiskOf(vm *VirtualMachine, disk *types.VirtualDisk) *acuraDisk {
	acuraMu.Lock()
	defer acuraMu.Unlock()
	id := fmt.Sprintf("%s/%d", vm.Self.Value, disk.Key)
	if d, ok := acuraState[id]; ok {
		return d
	}
	backing := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	live := &acuraLayer{file: backing.FileName, blocks: map[int64]int64{}}
	if acuraChangeTrackingOn(vm) {
		live.epoch = acuraNewEpoch()
	}
	d := &acuraDisk{
		capacity: acuraCapacity(disk),
		stem:     strings.TrimSuffix(backing.FileName, ".vmdk"),
		next:     1,
		layers:   []*acuraLayer{live},
	}
	acuraState[id] = d
	backing.ChangeId = live.changeID()
	return d
}

// acuraNewEpoch is a change id's first part as vCenter prints it: 16 bytes in hex, "52 de ... 7c".
func acuraNewEpoch() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] = 0x52
	hex := make([]string, 16)
	for i, x := range b {
		hex[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(hex[:8], " ") + "-" + strings.Join(hex[8:], " ")
}

// acuraChangeTrackingSwitched (re)starts or stops change tracking after a ReconfigVM.
func acuraChangeTrackingSwitched(vm *VirtualMachine, was bool) {
	on := acuraChangeTrackingOn(vm)
	if on == was {
		return
	}
	for _, disk := range acuraVMDisks(vm) {
		live := acuraDiskOf(vm, disk).live()
		live.epoch, live.seq = "", 0
		if on {
			live.epoch = acuraNewEpoch()
		}
		for b := range live.blocks {
			live.blocks[b] = 0 // written, but before this epoch
		}
		disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId = live.changeID()
	}
	Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: vm.Config.Hardware.Device}})
}

// acuraDisksReconfigured follows a ReconfigVM's disk changes: a disk added gets a sparse flat
// image of its capacity (and change tracking from nothing); a disk grown gets its live image
// extended and, as ESXi does when a disk is extended, its change tracking restarted: change
// ids from before are refused (FileFault), so a replicator must read it whole once. Every
// disk's backing then names its live change id again (an edit spec carries the client's).
func acuraDisksReconfigured(vm *VirtualMachine) types.BaseMethodFault {
	if AcuraPeer.DiskMiB <= 0 {
		return nil
	}
	for _, disk := range acuraVMDisks(vm) {
		acuraMu.Lock()
		d, known := acuraState[fmt.Sprintf("%s/%d", vm.Self.Value, disk.Key)]
		acuraMu.Unlock()
		size := acuraCapacity(disk)
		backing := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !known {
			if fault := acuraResize(vm, disk, size); fault != nil {
				return fault
			}
			acuraDiskOf(vm, disk)
			continue
		}
		live := d.live()
		if size > d.capacity {
			if fault := acuraResize(vm, disk, size); fault != nil {
				return fault
			}
			d.capacity = size
			if live.epoch != "" {
				live.epoch, live.seq = acuraNewEpoch(), 0
				for b := range live.blocks {
					live.blocks[b] = 0
				}
			}
		} else if size < d.capacity {
			return &types.InvalidArgument{InvalidProperty: "capacityInKB"} // disks only grow
		}
		backing.FileName = live.file
		backing.ChangeId = live.changeID()
	}
	Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: vm.Config.Hardware.Device}})
	return nil
}

// acuraCopyImage copies a flat image, leaving 64 KiB runs of zeros as holes.
func acuraCopyImage(from, to string, size int64) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, acuraBlock)
	zero := make([]byte, acuraBlock)
	for off := int64(0); ; off += acuraBlock {
		n, err := src.ReadAt(buf, off)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := dst.WriteAt(buf[:n], off); werr != nil {
				dst.Close()
				return werr
			}
		}
		if err == io.EOF {
			break
		} else if err != nil {
			dst.Close()
			return err
		}
	}
	if err := dst.Truncate(size); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// acuraFreezeDisks (CreateSnapshot, VM lock held): each disk's live layer becomes the
// snapshot's frozen layer and the VM writes on into a copy of it. The snapshot gets its own
// copies of the disk devices, so its config keeps naming the frozen files.
func acuraFreezeDisks(vm *VirtualMachine, snapshot *VirtualMachineSnapshot) types.BaseMethodFault {
	devices := make([]types.BaseVirtualDevice, len(vm.Config.Hardware.Device))
	copy(devices, vm.Config.Hardware.Device)
	snapshot.Config.Hardware.Device = devices
	for i, dev := range devices {
		disk, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		if _, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); !ok {
			continue
		}
		d := acuraDiskOf(vm, disk)
		frozen := d.live()
		var name string
		for {
			name = fmt.Sprintf("%s-%06d.vmdk", d.stem, d.next)
			d.next++
			p, fault := acuraFlatPath(vm, name, false)
			if fault != nil {
				return fault
			}
			if _, err := os.Stat(p); os.IsNotExist(err) {
				break
			}
		}
		from, _ := acuraFlatPath(vm, frozen.file, true)
		to, _ := acuraFlatPath(vm, name, true)
		if err := acuraCopyImage(from, to, d.capacity); err != nil {
			return acuraFault(err, name)
		}
		if fault := acuraWriteDescriptor(vm, name, d.capacity); fault != nil {
			return fault
		}
		live := &acuraLayer{file: name, blocks: map[int64]int64{}, epoch: frozen.epoch, seq: frozen.seq}
		for b, s := range frozen.blocks {
			live.blocks[b] = s
		}
		frozen.snapshot = snapshot.Self
		d.layers = append(d.layers, live)

		copied := *disk
		devices[i] = &copied
		acuraBackings(vm, disk.Key, d)
	}
	vm.updateDiskLayouts()
	Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: vm.Config.Hardware.Device}})
	return nil
}

// acuraBackings rewrites the backing chain of one disk in the VM's config (live layer) and
// in the config of every snapshot that froze one of its layers: fileName, changeId, parent.
func acuraBackings(vm *VirtualMachine, key int32, d *acuraDisk) {
	disk := acuraFindDisk(vm, key)
	liveBacking := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	var parent *types.VirtualDiskFlatVer2BackingInfo
	for _, l := range d.layers {
		b := *liveBacking
		b.FileName, b.ChangeId, b.Parent = l.file, l.changeID(), parent
		if l.snapshot.Value == "" {
			liveBacking.FileName, liveBacking.ChangeId, liveBacking.Parent = b.FileName, b.ChangeId, parent
			continue
		}
		if s, ok := Map.Get(l.snapshot).(*VirtualMachineSnapshot); ok {
			for i, dev := range s.Config.Hardware.Device {
				if sd, ok := dev.(*types.VirtualDisk); ok && sd.Key == key {
					copied := *sd
					backing := b
					copied.Backing = &backing
					s.Config.Hardware.Device[i] = &copied
				}
			}
		}
		parent = &b
	}
}

// acuraSnapshotSubtree is ref plus, with children, every snapshot below it.
func acuraSnapshotSubtree(vm *VirtualMachine, ref types.ManagedObjectReference, children bool) []types.ManagedObjectReference {
	refs := []types.ManagedObjectReference{ref}
	if children && vm.Snapshot != nil {
		if tree := findSnapshotInTree(vm.Snapshot.RootSnapshotList, ref); tree != nil {
			refs = append(refs, allSnapshotsInTree(tree.ChildSnapshotList)...)
		}
	}
	return refs
}

// acuraSnapshotsRemoved (RemoveSnapshot/RemoveAllSnapshots, VM lock held) consolidates the
// layers the snapshots froze: the layer above each one (complete image) takes its file name.
func acuraSnapshotsRemoved(vm *VirtualMachine, refs []types.ManagedObjectReference) {
	gone := map[types.ManagedObjectReference]bool{}
	for _, r := range refs {
		gone[r] = true
	}
	for _, disk := range acuraVMDisks(vm) {
		d := acuraDiskOf(vm, disk)
		for i := len(d.layers) - 2; i >= 0; i-- {
			l := d.layers[i]
			if !gone[l.snapshot] {
				continue
			}
			upper := d.layers[i+1]
			from, _ := acuraFlatPath(vm, upper.file, true)
			to, _ := acuraFlatPath(vm, l.file, true)
			if err := os.Rename(from, to); err != nil {
				vm.logPrintf("acura: consolidating %s into %s: %s", upper.file, l.file, err)
				continue
			}
			desc, _ := acuraFlatPath(vm, upper.file, false)
			_ = os.Remove(desc) // its layoutEx.file entry stays, as vcsim keeps those of removed .vmsn
			upper.file = l.file
			d.layers = append(d.layers[:i], d.layers[i+1:]...)
		}
		acuraBackings(vm, disk.Key, d)
	}
	vm.updateDiskLayouts()
	Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: vm.Config.Hardware.Device}})
}

// acuraGuestWrite writes data at offset into a disk's live layer and records the changed blocks.
func acuraGuestWrite(vm *VirtualMachine, disk *types.VirtualDisk, offset int64, data []byte) error {
	d := acuraDiskOf(vm, disk)
	live := d.live()
	flat, fault := acuraFlatPath(vm, live.file, true)
	if fault != nil {
		return fmt.Errorf("bad disk file %s", live.file)
	}
	f, err := os.OpenFile(flat, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, offset); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	var seq int64
	if live.epoch != "" {
		live.seq++
		seq = live.seq
	}
	for b := offset / acuraBlock; b <= (offset+int64(len(data))-1)/acuraBlock; b++ {
		live.blocks[b] = seq
	}
	disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId = live.changeID()
	return nil
}

// acuraGuestRequest resolves the vm/disk/offset query of the guest endpoints and runs f with
// the VM locked; f's error is the 400 answer.
func acuraGuestRequest(w http.ResponseWriter, r *http.Request, f func(*VirtualMachine, *types.VirtualDisk, int64, int64) error) {
	q := r.URL.Query()
	fail := func(msg string, args ...interface{}) {
		http.Error(w, fmt.Sprintf(msg, args...), http.StatusBadRequest)
	}
	vm, ok := Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: q.Get("vm")}).(*VirtualMachine)
	if !ok {
		fail("no virtual machine %q", q.Get("vm"))
		return
	}
	key, err := strconv.ParseInt(q.Get("disk"), 10, 32)
	if err != nil {
		fail("disk must be a device key, got %q", q.Get("disk"))
		return
	}
	offset, err := strconv.ParseInt(q.Get("offset"), 10, 64)
	if err != nil || offset < 0 {
		fail("offset must be a byte offset >= 0, got %q", q.Get("offset"))
		return
	}
	var answer error
	Map.WithLock(vm, func() {
		disk := acuraFindDisk(vm, int32(key))
		if disk == nil {
			answer = fmt.Errorf("%s has no disk with device key %d", vm.Self.Value, key)
			return
		}
		answer = f(vm, disk, offset, acuraCapacity(disk))
	})
	if answer != nil {
		fail("%s", answer)
	}
}

// acuraServeGuestWrite: PUT /acura/guest-write?vm=vm-42&disk=204&offset=N, body = the bytes the
// guest writes there (into the disk's live layer). 204, or 400 with a one-line reason.
func acuraServeGuestWrite(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "use PUT", http.StatusMethodNotAllowed)
		return
	}
	done := false
	acuraGuestRequest(w, r, func(vm *VirtualMachine, disk *types.VirtualDisk, offset, capacity int64) error {
		if offset > capacity {
			return fmt.Errorf("offset %d is past the disk's end (%d bytes)", offset, capacity)
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, capacity-offset+1))
		if err != nil {
			return fmt.Errorf("reading the body: %s", err)
		}
		if offset+int64(len(data)) > capacity {
			return fmt.Errorf("write past the disk's end (%d bytes)", capacity)
		}
		if err := acuraGuestWrite(vm, disk, offset, data); err != nil {
			return fmt.Errorf("writing: %s", err)
		}
		done = true
		return nil
	})
	if done {
		w.WriteHeader(http.StatusNoContent)
	}
}

// acuraServeDiskRead: GET /acura/disk-read?vm=&disk=&offset=&length= answers what the guest
// reads there now (the live layer; zeros where nothing was written).
func acuraServeDiskRead(w http.ResponseWriter, r *http.Request) {
	var data []byte
	acuraGuestRequest(w, r, func(vm *VirtualMachine, disk *types.VirtualDisk, offset, capacity int64) error {
		length, err := strconv.ParseInt(r.URL.Query().Get("length"), 10, 64)
		if err != nil || length < 0 || offset+length > capacity {
			return fmt.Errorf("length must be >= 0 and within the disk (%d bytes)", capacity)
		}
		flat, fault := acuraFlatPath(vm, acuraDiskOf(vm, disk).live().file, true)
		if fault != nil {
			return fmt.Errorf("bad disk file")
		}
		f, err := os.Open(flat)
		if err != nil {
			return err
		}
		defer f.Close()
		data = make([]byte, length)
		if _, err := f.ReadAt(data, offset); err != nil && err != io.EOF {
			return err
		}
		return nil
	})
	if data != nil {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(data)
	}
}

// QueryChangedDiskAreas answers, for one disk as of a snapshot (or now, without one), the
// 64 KiB-aligned areas changed since changeId ("*": every allocated area), for at most
// AcuraPeer.CBTPageMiB of the disk from startOffset; the answer's length says how far it
// covers, and a client continues at startOffset+length until the disk's capacity.
func (vm *VirtualMachine) QueryChangedDiskAreas(ctx *Context, req *types.QueryChangedDiskAreas) soap.HasFault {
	body := new(methods.QueryChangedDiskAreasBody)
	info, fault := vm.acuraChangedAreas(req)
	if fault != nil {
		body.Fault_ = Fault("", fault)
		if ff, ok := fault.(*types.FileFault); ok && len(ff.FaultMessage) > 0 {
			body.Fault_.String = ff.FaultMessage[0].Message
		}
		return body
	}
	body.Res = &types.QueryChangedDiskAreasResponse{Returnval: *info}
	return body
}

func (vm *VirtualMachine) acuraChangedAreas(req *types.QueryChangedDiskAreas) (*types.DiskChangeInfo, types.BaseMethodFault) {
	disk := acuraFindDisk(vm, req.DeviceKey)
	if disk == nil {
		return nil, &types.InvalidArgument{InvalidProperty: "deviceKey"}
	}
	d := acuraDiskOf(vm, disk)
	if req.StartOffset < 0 || req.StartOffset >= d.capacity {
		return nil, &types.InvalidArgument{InvalidProperty: "startOffset"}
	}
	layer := d.live()
	if req.Snapshot != nil {
		layer = nil
		for _, l := range d.layers {
			if l.snapshot == *req.Snapshot {
				layer = l
			}
		}
		if layer == nil {
			return nil, &types.InvalidArgument{InvalidProperty: "snapshot"}
		}
	}
	refuse := func(why string) (*types.DiskChangeInfo, types.BaseMethodFault) {
		return nil, acuraFault(fmt.Errorf("%s", why), layer.file)
	}
	if !acuraChangeTrackingOn(vm) {
		return refuse("change tracking is not enabled on this virtual machine")
	}
	if layer.epoch == "" || layer.epoch != d.live().epoch {
		return refuse("the snapshot was taken before change tracking was (re)started")
	}
	since := int64(-1) // "*": every block written, plus every block holding data
	if req.ChangeId != "*" {
		i := strings.LastIndex(req.ChangeId, "/")
		seq, err := strconv.ParseInt(req.ChangeId[i+1:], 10, 64)
		if i < 0 || err != nil || req.ChangeId[:i] != layer.epoch || seq < 0 || seq > layer.seq {
			return refuse(fmt.Sprintf("unknown change id %q", req.ChangeId))
		}
		since = seq
	}
	end := req.StartOffset + AcuraPeer.CBTPageMiB<<20
	if end > d.capacity {
		end = d.capacity
	}
	changed := map[int64]bool{}
	for b, s := range layer.blocks {
		if s > since {
			changed[b] = true
		}
	}
	if since < 0 {
		flat, _ := acuraFlatPath(vm, layer.file, true)
		if err := acuraNonZeroBlocks(flat, req.StartOffset/acuraBlock, end, changed); err != nil {
			return refuse(err.Error())
		}
	}
	var blocks []int64
	for b := range changed {
		if b*acuraBlock < end && (b+1)*acuraBlock > req.StartOffset {
			blocks = append(blocks, b)
		}
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i] < blocks[j] })
	info := &types.DiskChangeInfo{StartOffset: req.StartOffset, Length: end - req.StartOffset}
	for _, b := range blocks {
		start, stop := b*acuraBlock, (b+1)*acuraBlock
		if start < req.StartOffset {
			start = req.StartOffset
		}
		if stop > d.capacity {
			stop = d.capacity
		}
		n := len(info.ChangedArea)
		if n > 0 && info.ChangedArea[n-1].Start+info.ChangedArea[n-1].Length == start {
			info.ChangedArea[n-1].Length += stop - start
		} else {
			info.ChangedArea = append(info.ChangedArea, types.DiskChangeExtent{Start: start, Length: stop - start})
		}
	}
	return info, nil
}

// acuraNonZeroBlocks adds the blocks from block first up to byte end that hold any data.
func acuraNonZeroBlocks(flat string, first, end int64, into map[int64]bool) error {
	f, err := os.Open(flat)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, acuraBlock)
	zero := make([]byte, acuraBlock)
	for b := first; b*acuraBlock < end; b++ {
		n, err := f.ReadAt(buf, b*acuraBlock)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			into[b] = true
		}
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
	return nil
}
