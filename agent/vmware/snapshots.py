"""The job's VMware snapshot: taken with the quiesce strategy, found again by name, removed.

The snapshot of job 42 is called ``acura-job-42``: a snapshot whose name starts with
``acura-job-`` is this product's, so one a crashed job left behind is recognised on the next
job of the VM and removed before a new one is taken (a VM must not collect snapshots: each
one slows it and fills its datastore). A snapshot that cannot be removed is a warning on the
job and the machine, and is tried again next time.

Quiesce strategy (the cloud's *Use enforce quiesce strategy*): a quiesced snapshot first
(VMware Tools flush the guest's file systems and applications — ``application``
consistency); when quiescing fails, a snapshot without it (``crash`` consistency, what a
power cut would leave) — unless the cloud enforces quiescing, then the job fails with the
quiesce error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyVmomi import vim, vmodl

from .session import VMwareError
from .tasks import fault_text, wait

log = logging.getLogger("agent.vmware")

PREFIX = "acura-job-"
QUIESCE_FAULTS = (
    vim.fault.ApplicationQuiesceFault,
    vim.fault.ToolsUnavailable,
    vim.fault.GuestOperationsUnavailable,
)


def name_for(job_id: int) -> str:
    return f"{PREFIX}{job_id}"


@dataclass
class TakenSnapshot:
    ref: object  # vim.vm.Snapshot
    name: str
    consistency: str  # "application" (quiesced) or "crash"
    quiesce_error: str = ""


def ours(vm) -> list[tuple[str, object]]:
    """``(name, snapshot)`` of every snapshot of the VM this product created, oldest first."""
    tree = vm.snapshot
    found: list[tuple[str, object]] = []
    pending = list(tree.rootSnapshotList) if tree is not None else []
    while pending:
        node = pending.pop(0)
        if node.name.startswith(PREFIX):
            found.append((node.name, node.snapshot))
        pending.extend(node.childSnapshotList or [])
    return found


def remove(snapshot, name: str, vm_name: str) -> str | None:
    """Remove one snapshot (its children stay); None, or the warning to report."""
    try:
        wait(snapshot.RemoveSnapshot_Task(removeChildren=False), f"removing {name}")
    except vmodl.fault.ManagedObjectNotFound:
        return None  # already gone
    except Exception as exc:  # a warning, never the job's failure
        text = fault_text(exc) if isinstance(exc, vmodl.MethodFault) else str(exc)
        warning = (
            f"the VMware snapshot {name} of VM {vm_name} could not be removed ({text}); it is "
            "tried again on the next job"
        )
        log.warning("%s", warning)
        return warning
    log.info("snapshot %s of VM %s removed", name, vm_name)
    return None


def remove_leftovers(vm, vm_name: str) -> list[str]:
    """Remove the snapshots earlier (crashed) jobs left; returns the warnings."""
    warnings = []
    for name, snapshot in ours(vm):
        log.info("removing snapshot %s that an earlier job of VM %s left behind", name, vm_name)
        warning = remove(snapshot, name, vm_name)
        if warning:
            warnings.append(warning)
    return warnings


def take(vm, vm_name: str, job_id: int, *, enforce_quiesce: bool) -> TakenSnapshot:
    """The job's snapshot with the quiesce strategy; raises VMwareError when it cannot be
    taken (or quiescing failed and the cloud enforces it)."""
    name = name_for(job_id)
    description = f"Acura Portal replication job {job_id}; removed when the job ends"
    try:
        ref = wait(
            vm.CreateSnapshot_Task(name, description, False, True),
            f"the quiesced snapshot of VM {vm_name}",
        )
        log.info("snapshot %s of VM %s taken, quiesced (application-consistent)", name, vm_name)
        return TakenSnapshot(ref, name, "application")
    except QUIESCE_FAULTS as exc:
        error = fault_text(exc)
        if enforce_quiesce:
            raise VMwareError(
                f"quiescing VM {vm_name} failed ({error}) and the cloud enforces the quiesce "
                "strategy, so no snapshot was taken"
            ) from None
        log.warning(
            "quiescing VM %s failed (%s); taking a snapshot without quiescing "
            "(crash-consistent)", vm_name, error,
        )  # fmt: skip
    except vmodl.MethodFault as exc:
        raise VMwareError(
            f"the snapshot of VM {vm_name} could not be taken: {fault_text(exc)}"
        ) from None
    try:
        ref = wait(
            vm.CreateSnapshot_Task(name, description, False, False),
            f"the snapshot of VM {vm_name}",
        )
    except vmodl.MethodFault as exc:
        raise VMwareError(
            f"the snapshot of VM {vm_name} could not be taken: {fault_text(exc)}"
        ) from None
    log.info("snapshot %s of VM %s taken, not quiesced (crash-consistent)", name, vm_name)
    return TakenSnapshot(ref, name, "crash", quiesce_error=error)
