"""*On replication start* / *On replication finish*: No action, Power off or Power on.

Applied and waited for; a VM already in the asked state is left as it is (not an error). The
finish action runs also when the job failed after the start action, so a VM is never left
powered off because of a replication unless *On replication finish* says so.
"""

from __future__ import annotations

import logging

from pyVmomi import vim, vmodl

from .session import VMwareError
from .tasks import fault_text, wait

log = logging.getLogger("agent.vmware")

ON, OFF = vim.VirtualMachine.PowerState.poweredOn, vim.VirtualMachine.PowerState.poweredOff
ACTIONS = {"power_on": ON, "power_off": OFF}
LABELS = {"none": "No action", "power_on": "Power on", "power_off": "Power off"}


def apply(vm, vm_name: str, action: str, when: str) -> None:
    """Bring the VM to the state ``action`` asks for; ``when`` is "start" or "finish"."""
    wanted = ACTIONS.get(action or "none")
    if wanted is None:
        if action not in (None, "", "none"):
            raise VMwareError(f"unknown power action {action!r} on replication {when}")
        return
    state = vm.runtime.powerState
    label = LABELS[action]
    if state == wanted:
        log.info("on replication %s: %s — VM %s is already %s", when, label, vm_name, state)
        return
    try:
        task = vm.PowerOnVM_Task() if wanted == ON else vm.PowerOffVM_Task()
        wait(task, f"{label} of VM {vm_name}", timeout=600)
    except vim.fault.InvalidPowerState:
        if vm.runtime.powerState != wanted:
            raise
    except vmodl.MethodFault as exc:
        raise VMwareError(
            f"on replication {when}: {label} of VM {vm_name} failed: {fault_text(exc)}"
        ) from None
    log.info("on replication %s: %s — VM %s was %s, now %s", when, label, vm_name, state, wanted)
