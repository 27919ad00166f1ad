"""One replication job of a vSphere VM, from the cloud's settings to the reported result.

The order matters and is the product description's: thresholds before anything is touched;
the start power action; leftovers of crashed jobs removed; CBT on; the snapshot (quiesce
strategy); every disk of the snapshot read from its frozen layer — only the areas CBT lists —
into the common pipeline; then, whatever happened after the start action, the snapshot
removed and the finish power action applied, *before* the result is reported (so a job that
says "succeeded" left the VM as the cloud asks). Each step is logged at INFO: the daemon
ships those lines as the job's log, which the machine page shows.

What goes wrong without failing the job (a snapshot that could not be removed, quiescing that
fell back to a crash-consistent snapshot, a change id vCenter refused so the disk was read
whole, a disk the portal does not know yet) is a warning on the job and the machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time

from pyVmomi import vim, vmodl

from ..errors import AgentError
from ..platform_job import PlatformJob
from ..replicate import DiskSource, JobResult
from . import power, snapshots, thresholds
from .changes import DiskPlanner
from .datastore import DatastoreDisk, DatastoreFile, flat_extent
from .session import Session, VMwareError, find_vm, translate, vcenter
from .tasks import fault_text, wait

log = logging.getLogger("agent.vmware")


def virtual_disks(devices) -> list:
    return sorted(
        (d for d in devices or [] if isinstance(d, vim.vm.device.VirtualDisk)),
        key=lambda d: d.key,
    )


def capacity_of(disk) -> int:
    return int(getattr(disk, "capacityInBytes", None) or (disk.capacityInKB or 0) * 1024)


def datacenter_path(session: Session, vm) -> str:
    """The inventory path of the VM's datacenter (``dcPath`` of /folder), e.g. ``DC0``."""
    node = vm.parent
    while node is not None and not isinstance(node, vim.Datacenter):
        node = node.parent
    if node is None:
        raise VMwareError(f"VM {vm.name} is in no datacenter")
    parts = [node.name]
    root = session.content.rootFolder._moId
    parent = node.parent
    while parent is not None and parent._moId != root:
        parts.insert(0, parent.name)
        parent = parent.parent
    return "/".join(parts)


class VMwareJob(PlatformJob):
    """Runs :meth:`run` once for one job handed out by ``jobs/next/``."""

    def __init__(self, client, job: dict, **options):
        super().__init__(client, job, **options)
        self.change_tracking: bool | None = None
        self.vm = self.vm_name = self.snapshot = None
        self.cloud: dict = {}
        self.touched = False
        self.planners: list[DiskPlanner] = []
        self.timings: dict[str, float] = {}  # seconds per step (the bench prints them)
        self._disks_started: float | None = None

    @contextlib.contextmanager
    def _timed(self, step: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - started

    # -- the job ---------------------------------------------------------------------------

    def run(self) -> JobResult:
        try:
            started = time.perf_counter()
            self.cloud = self.client.json("GET", "cloud/") or {}
            pool = self.threads * 2 + 2
            with vcenter(self.cloud, pool_size=pool, stop=self.halt) as session:
                self.timings["vcenter"] = time.perf_counter() - started
                return self._replicate(session)
        except AgentError as exc:
            self.report_failed(exc)
            raise

    def _replicate(self, session: Session) -> JobResult:
        name = self.machine.get("name") or self.machine.get("external_id")
        with self._timed("vcenter"):
            vm = self.vm = find_vm(session, str(self.machine.get("external_id") or ""), name)
            self.vm_name = vm.name
        log.info("job %s: VM %s on vCenter %s", self.job_id, self.vm_name, session.where)
        with self._timed("thresholds"):
            thresholds.check(self.vm_name, vm.config.hardware.device, self.cloud)
        self.touched = True
        try:
            with self._timed("power_start"):
                power.apply(vm, self.vm_name, self.cloud.get("on_replication_start"), "start")
            with self._timed("leftovers"):
                self.warnings += snapshots.remove_leftovers(vm, self.vm_name)
            with self._timed("change_tracking"):
                self.change_tracking = self._ensure_change_tracking(vm)
            with self._timed("snapshot"):
                self.snapshot = snapshots.take(
                    vm,
                    self.vm_name,
                    self.job_id,
                    enforce_quiesce=bool(self.cloud.get("enforce_quiesce")),
                )
            if self.snapshot.quiesce_error:
                self.warnings.append(
                    f"quiescing VM {self.vm_name} failed ({self.snapshot.quiesce_error}): its "
                    "snapshot is crash-consistent"
                )
            sources = self._sources(session, vm)
            self._disks_started = time.perf_counter()
            return self.replicate(sources)
        finally:
            self._finish(False)

    def _ensure_change_tracking(self, vm) -> bool:
        if vm.config.changeTrackingEnabled:
            return True
        try:
            spec = vim.vm.ConfigSpec(changeTrackingEnabled=True)
            wait(vm.ReconfigVM_Task(spec), f"switching on change tracking of VM {self.vm_name}")
        except vmodl.MethodFault as exc:
            warning = (
                f"change block tracking could not be switched on for VM {self.vm_name} "
                f"({fault_text(exc)}): every replication reads its whole disks"
            )
            log.warning("%s", warning)
            self.warnings.append(warning)
            return False
        log.info(
            "change block tracking was off on VM %s: switched on (this replication reads the "
            "allocated areas, the next ones only what changed)", self.vm_name,
        )  # fmt: skip
        return True

    def _sources(self, session: Session, vm) -> list[DiskSource]:
        """One source per disk of the snapshot that the portal knows, reading its frozen
        layer; the snapshot's own config says which files those are."""
        datacenter = datacenter_path(session, vm)
        known = {str(d.get("key")) for d in self.job.get("disks") or []}
        disks = virtual_disks(self.snapshot.ref.config.hardware.device)
        taken_at = self._taken_at()
        sources = []
        for disk in disks:
            key = str(disk.key)
            if known and key not in known:
                self.warnings.append(
                    f"disk {key} ({disk.deviceInfo.label if disk.deviceInfo else key}) of VM "
                    f"{self.vm_name} is new since the portal's last discovery: it is replicated "
                    "from the next job on"
                )
                log.warning("%s", self.warnings[-1])
                continue
            backing = disk.backing
            size = capacity_of(disk)
            descriptor = DatastoreFile.from_backing(datacenter, backing.fileName)
            try:
                file = flat_extent(session.http, descriptor, size)
            except AgentError as exc:
                raise VMwareError(f"disk {key} of VM {self.vm_name}: {exc}") from None
            planner = DiskPlanner(vm, self.snapshot.ref, key, size, where=session.where)
            self.planners.append(planner)
            fields = {"consistency": self.snapshot.consistency}
            change_id = getattr(backing, "changeId", None)
            if change_id:
                fields["change_id"] = change_id
            if taken_at:
                fields["taken_at"] = taken_at
            log.info("disk %s: %d bytes, frozen layer %s", key, size, file)
            sources.append(
                DiskSource(
                    DatastoreDisk(session.http, file, key, size),
                    open_fields=fields,
                    plan=planner,
                )
            )
        for gone in sorted(known - {str(d.key) for d in disks}):
            log.info(
                "disk %s is no longer on VM %s; its snapshots stay restorable", gone, self.vm_name
            )
        if not sources:
            raise VMwareError(f"VM {self.vm_name} has no disk the portal knows yet")
        return sources

    def _taken_at(self) -> str | None:
        """When vCenter took the job's snapshot (its tree's createTime)."""
        tree = self.vm.snapshot
        pending = list(tree.rootSnapshotList) if tree is not None else []
        while pending:
            node = pending.pop()
            if node.snapshot._moId == self.snapshot.ref._moId:
                created = node.createTime
                if created.tzinfo is None:
                    created = created.replace(tzinfo=dt.UTC)
                return created.isoformat()
            pending.extend(node.childSnapshotList or [])
        return None

    # -- the end -------------------------------------------------------------------------------

    def _finish(self, succeeded: bool) -> dict:
        """Remove the snapshot, apply the finish power action (once, whatever happened after
        the start action); the result's extra fields."""
        if self.finished:
            return self.result_fields()
        self.finished = True
        if self._disks_started is not None:
            self.timings["disks"] = time.perf_counter() - self._disks_started
        if self.snapshot is not None:
            with self._timed("snapshot_removal"):
                warning = snapshots.remove(self.snapshot.ref, self.snapshot.name, self.vm_name)
            if warning:
                self.warnings.append(warning)
        if self.touched:
            try:
                with self._timed("power_finish"):
                    power.apply(
                        self.vm, self.vm_name, self.cloud.get("on_replication_finish"), "finish"
                    )
            except (AgentError, vmodl.MethodFault) as exc:
                error = translate(exc, self.cloud.get("endpoint", "vCenter"))
                self.warnings.append(str(error))
                log.warning("%s", error)
            try:
                self.change_tracking = bool(self.vm.config.changeTrackingEnabled)
            except Exception:  # the result still goes out without it
                log.debug("could not read the change tracking state", exc_info=True)
        for planner in self.planners:
            self.warnings += planner.notes
        steps = ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in self.timings.items())
        state = "succeeded" if succeeded else "failed"
        log.info("job %s: VMware steps done (%s): %s", self.job_id, state, steps)
        return self.result_fields()

    def result_fields(self) -> dict:
        fields = super().result_fields()
        if self.change_tracking is not None:
            fields["change_tracking"] = self.change_tracking
        return fields
