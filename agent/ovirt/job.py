"""One replication job of an oVirt VM: the product description's snapshot lifecycle.

"oVirt takes a snapshot at the start of replication, at the end of replication it deletes the
snapshot from the previous replication, leaving a new one, an incremental replica is taken
based on the definition of new blocks between two snapshots."

1. A snapshot of the VM's disks, ``acura-job-<job id>`` (``persist_memorystate`` false), waited
   for until ``ok``.
2. Per disk of the snapshot: an upload session whose change id is the snapshot's id (the next
   job's ``base_change_id``); an image transfer of the snapshot's volume with its chain, read
   by Range requests. What is read (:class:`DiskPlanner`): with no base, the extents that are
   not zero; when the volume's parent is the base snapshot's volume of that disk, only the
   extents allocated in the volume's own layer (a shallow transfer's ``hole: false``); when
   the chain does not match (the base snapshot was deleted by hand), the whole disk, compared
   with the base index — a warning, never a gap.
3. At the end every transfer is finalized (cancelled after a failure) and every snapshot of
   this product but the new one is deleted (the previous replication's, and any a crashed job
   left); after a failure the new snapshot is deleted instead, so the base stays.
"""

from __future__ import annotations

import logging
import time

import ovirtsdk4
import ovirtsdk4.types as types

from ..errors import AgentError
from ..http import Client
from ..platform_job import PlatformJob
from ..ranged import RangeDisk
from ..replicate import DiskSource, JobResult, ReadPlan
from . import transfers
from .session import OVirtError, Session, engine_session, translate

log = logging.getLogger("agent.ovirt")

PREFIX = "acura-job-"
SNAPSHOT_TIMEOUT = 600.0


class DiskPlanner:
    """The read plan of one snapshot disk, once its upload session is open."""

    def __init__(self, job: OVirtJob, disk_id: str, alias: str, volume: str, parents: dict):
        self.job, self.disk_id, self.alias, self.volume = job, disk_id, alias, volume
        self.parents = parents  # volume -> (parent volume, snapshot id, disk id)

    def __call__(self, session: dict, base) -> ReadPlan:
        what = f"disk {self.alias}"
        if base is None:
            found = transfers.extents(self.job.imageio, self.job.full[self.disk_id], what)
            areas = [(e["start"], e["length"]) for e in found if not e.get("zero")]
            return self._plan(areas, "not zero (no earlier snapshot)", zero_elsewhere=True)
        previous = session.get("base_change_id") or ""
        base_volume = next(
            (v for v, (_, snap, disk) in self.parents.items()
             if snap == previous and disk == self.disk_id),
            None,
        )  # fmt: skip
        parent = self.parents.get(self.volume, (None, None, None))[0]
        if not previous or base_volume is None or parent != base_volume:
            note = (
                f"{what}: the snapshot of the previous replication ({previous or 'unknown'}) is "
                "gone or no longer under the new one (was it deleted in oVirt?): reading the "
                "whole disk and comparing it with the base"
            )
            self.job.warn(note)
            return ReadPlan(None)
        shallow = transfers.start(
            self.job.session.system, self.volume, shallow=True, what=f"{what}'s new layer"
        )
        try:
            found = transfers.extents(self.job.imageio, shallow, f"{what}'s new layer")
        finally:
            transfers.finalize(shallow, f"{what}'s new layer")
        areas = [(e["start"], e["length"]) for e in found if not e.get("hole")]
        return self._plan(areas, "new since the previous snapshot")

    def _plan(self, areas, what: str, *, zero_elsewhere: bool = False) -> ReadPlan:
        total = sum(length for _, length in areas)
        log.info(
            "disk %s: %d extent(s), %.1f MiB to read (%s)",
            self.alias, len(areas), total / 2**20, what,
        )  # fmt: skip
        return ReadPlan(areas, zero_elsewhere=zero_elsewhere)


class OVirtJob(PlatformJob):
    """Runs :meth:`run` once for one job handed out by ``jobs/next/``."""

    def __init__(self, client, job: dict, **options):
        super().__init__(client, job, **options)
        self.snapshot = None
        self.session: Session | None = None
        self.imageio: Client | None = None
        self.full: dict[str, transfers.Transfer] = {}
        self.vm_name = self.machine.get("name") or self.machine.get("external_id")

    def run(self) -> JobResult:
        try:
            cloud = self.client.json("GET", "cloud/") or {}
            with engine_session(cloud, stop=self.halt) as session:
                self.session = session
                try:
                    return self._replicate(session)
                finally:
                    self._finish(False)
                    if self.imageio is not None:
                        self.imageio.close()
        except AgentError as exc:
            self.report_failed(translate(exc, self.session.where if self.session else "?"))
            raise

    # -- the steps --------------------------------------------------------------------------

    def _replicate(self, session: Session) -> JobResult:
        vm_id = str(self.machine.get("external_id") or "")
        vm_service = session.system.vms_service().vm_service(vm_id)
        try:
            vm = vm_service.get()
        except ovirtsdk4.NotFoundError:
            raise OVirtError(
                f"VM {self.vm_name!r} ({vm_id}) is not in the oVirt engine {session.where} any "
                "more: it was removed, or moved out of what this appliance's user may see"
            ) from None
        self.vm_name = vm.name
        log.info("job %s: VM %s on the oVirt engine %s", self.job_id, vm.name, session.where)
        snapshots = vm_service.snapshots_service()
        self._cancel_stray_transfers(session, snapshots)
        self.snapshot = self._take_snapshot(snapshots)
        sources = self._sources(session, snapshots.snapshot_service(self.snapshot.id))
        return self.replicate(sources)

    def _cancel_stray_transfers(self, session: Session, snapshots) -> None:
        """Transfers a crashed job left open on this product's snapshots hold their volumes
        (the snapshot could not be deleted): cancel them before anything else."""
        volumes = set()
        for snap in snapshots.list():
            if (snap.description or "").startswith(PREFIX):
                service = snapshots.snapshot_service(snap.id).disks_service()
                volumes.update(d.image_id for d in service.list())
        if not volumes:
            return
        open_phases = {transfers.Phase.INITIALIZING, transfers.Phase.TRANSFERRING,
                       transfers.Phase.PAUSED_SYSTEM, transfers.Phase.PAUSED_USER}  # fmt: skip
        service_root = session.system.image_transfers_service()
        for transfer in service_root.list():
            image = transfer.image.id if transfer.image is not None else None
            if transfer.phase in open_phases and image in volumes:
                log.warning("cancelling image transfer %s an earlier job left open", transfer.id)
                transfers.cancel(service_root.image_transfer_service(transfer.id))

    def _take_snapshot(self, snapshots):
        name = f"{PREFIX}{self.job_id}"
        added = snapshots.add(types.Snapshot(description=name, persist_memorystate=False))
        service = snapshots.snapshot_service(added.id)
        deadline = time.monotonic() + SNAPSHOT_TIMEOUT
        delay = 0.01  # doubling to 1 s: a quick phase change costs no fixed wait
        while True:
            status = service.get().snapshot_status
            if status == types.SnapshotStatus.OK:
                break
            if status != types.SnapshotStatus.LOCKED:
                raise OVirtError(f"the snapshot {name} of VM {self.vm_name} ended {status}")
            if time.monotonic() >= deadline:
                raise OVirtError(
                    f"the snapshot {name} of VM {self.vm_name} is still locked after "
                    f"{int(SNAPSHOT_TIMEOUT)} s (is a storage task stuck in oVirt?)"
                )
            time.sleep(delay)
            delay = min(1.0, delay * 2)
        log.info("snapshot %s of VM %s taken (%s)", name, self.vm_name, added.id)
        return added

    def _sources(self, session: Session, snapshot_service) -> list[DiskSource]:
        known = {str(d.get("key")) for d in self.job.get("disks") or []}
        disks = snapshot_service.disks_service().list()
        parents: dict = {}
        for domain in {sd.id for d in disks for sd in (d.storage_domains or [])}:
            listing = (
                session.system.storage_domains_service().storage_domain_service(domain)
                .disk_snapshots_service().list()
            )  # fmt: skip
            for item in listing:
                parents[item.id] = (
                    item.parent.id if item.parent is not None else None,
                    item.snapshot.id if item.snapshot is not None else None,
                    item.disk.id if item.disk is not None else None,
                )
        sources = []
        for disk in disks:
            alias = disk.alias or disk.id
            if known and disk.id not in known:
                warning = (
                    f"disk {alias} of VM {self.vm_name} is new since the portal's last "
                    "discovery: it is replicated from the next job on"
                )
                log.warning("%s", warning)
                self.warnings.append(warning)
                continue
            full = transfers.start(session.system, disk.image_id, shallow=False,
                                   what=f"disk {alias}")  # fmt: skip
            self.full[disk.id] = full
            if self.imageio is None:
                self.imageio = Client(full.base, None, retries=4, pool_size=self.threads * 2 + 2,
                                      stop=self.halt, auth_label="ovirt-imageio")  # fmt: skip
                self.imageio.server = f"ovirt-imageio {full.base}"
            reader = RangeDisk(
                self.imageio, full.path, disk.id, int(disk.provisioned_size),
                source=f"image transfer {full.id} of disk {alias}",
                renew=lambda disk=disk, alias=alias: self._renew(disk, alias),
            )  # fmt: skip
            planner = DiskPlanner(self, disk.id, alias, disk.image_id, parents)
            fields = {"consistency": "crash", "change_id": self.snapshot.id}
            sources.append(DiskSource(reader, open_fields=fields, plan=planner))
        if not sources:
            raise OVirtError(f"VM {self.vm_name} has no disk the portal knows yet")
        return sources

    def _renew(self, disk, alias: str) -> str:
        """The ticket expired: a new transfer of the same volume; reading resumes there."""
        old = self.full.get(disk.id)
        if old is not None:
            transfers.cancel(old.service)
        log.warning("the transfer of disk %s expired; renewing it", alias)
        fresh = transfers.start(self.session.system, disk.image_id, shallow=False,
                                what=f"disk {alias}")  # fmt: skip
        self.full[disk.id] = fresh
        return fresh.path

    # -- the end ---------------------------------------------------------------------------

    def _finish(self, succeeded: bool) -> dict:
        if self.finished:
            return self.result_fields()
        self.finished = True
        for disk_id, transfer in self.full.items():
            try:
                if succeeded:
                    transfers.finalize(transfer, f"disk {disk_id}")
                else:
                    transfers.cancel(transfer.service)
            except (AgentError, ovirtsdk4.Error) as exc:
                self.warnings.append(f"the image transfer of disk {disk_id} did not end: {exc}")
        if self.snapshot is not None and self.session is not None:
            self._cleanup_snapshots(succeeded)
        log.info(
            "job %s: oVirt steps done (%s)", self.job_id, "succeeded" if succeeded else "failed"
        )
        return self.result_fields()

    def _cleanup_snapshots(self, succeeded: bool) -> None:
        vm_id = str(self.machine.get("external_id") or "")
        snapshots = self.session.system.vms_service().vm_service(vm_id).snapshots_service()
        try:
            ours = [s for s in snapshots.list() if (s.description or "").startswith(PREFIX)]
        except ovirtsdk4.Error as exc:
            self.warnings.append(f"the snapshots of VM {self.vm_name} could not be listed: {exc}")
            return
        if succeeded:  # the previous replication's and any a crashed job left
            doomed = [s for s in ours if s.id != self.snapshot.id]
        else:  # the base of the next job stays; the new one goes
            doomed = [s for s in ours if s.id == self.snapshot.id]
        for snap in doomed:
            try:
                snapshots.snapshot_service(snap.id).remove()
                self._wait_gone(snapshots, snap.id)
                log.info("snapshot %s of VM %s deleted", snap.description, self.vm_name)
            except (AgentError, ovirtsdk4.Error) as exc:
                warning = (
                    f"the oVirt snapshot {snap.description} of VM {self.vm_name} could not be "
                    f"deleted ({exc}); it is tried again on the next job"
                )
                log.warning("%s", warning)
                self.warnings.append(warning)
        if succeeded:
            log.info(
                "snapshot %s of VM %s kept as the base of the next replication",
                self.snapshot.description, self.vm_name,
            )  # fmt: skip

    def _wait_gone(self, snapshots, snapshot_id: str) -> None:
        deadline = time.monotonic() + SNAPSHOT_TIMEOUT
        while any(s.id == snapshot_id for s in snapshots.list()):
            if time.monotonic() >= deadline:
                raise OVirtError(f"the snapshot is still there after {int(SNAPSHOT_TIMEOUT)} s")
            time.sleep(0.5)
