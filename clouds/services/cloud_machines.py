"""Machines of a cloud, discovered by the portal for the cloud's appliance agents.

A VMware or oVirt appliance replicates the VMs of one part of its cloud: the ESXi host or
cluster it stands in (VMware, by the cloud's *Use cluster level discover*), or the cluster,
host, data center or whole cloud of the oVirt *Discovery level*. The appliance does not talk
to vCenter or the engine to list them; the portal does, with the cloud's connector, and
reports the machines of each appliance's part through the same inventory service agents
use (``agent_inventory``), so they land in the appliance's group as Unprotected.

Which part an appliance stands in comes from its own VM: it reports its SMBIOS UUID
(``vm_uuid``), which is the VM's ``config.uuid`` on VMware and its id on oVirt; its hostname
matched against VM names is the fallback. A cloud with a single part needs neither. Two
appliances in one part: the first enrolled serves it, the other is told so.
"""

from dataclasses import dataclass, field

from django.utils import timezone

from ..connectors import Inventory, Scope, Vm
from ..crypto import SealError
from ..models import Agent, Cloud
from .clouds import CloudCheckFailed, cloud_discover
from .inventory import MAX_DISKS, MAX_MACHINES, agent_inventory

LABEL_MAX = 255


@dataclass
class CloudMachinesSync:
    ok: bool
    message: str
    served: dict[int, str] = field(default_factory=dict)  # agent pk -> scope path
    machines: int = 0
    unplaced: list[int] = field(default_factory=list)  # agent pks with no part to serve


def _scope_vms(inventory: Inventory, scope: Scope) -> list[Vm]:
    """The VMs in one discovery scope of the tree."""
    if scope.kind == "cloud":
        return inventory.vms()
    found: list[Vm] = []
    for dc in inventory.datacenters:
        if scope.kind == "datacenter" and dc.id == scope.id:
            return Inventory(datacenters=[dc]).vms()
        for cluster in dc.clusters:
            if scope.kind == "cluster" and cluster.id == scope.id:
                return cluster.vms + [vm for host in cluster.hosts for vm in host.vms]
            hosts = cluster.hosts
            found += [vm for host in hosts if host.id == scope.id for vm in host.vms]
        found += [vm for host in dc.hosts if host.id == scope.id for vm in host.vms]
    return found if scope.kind == "host" else []


def _norm(text: str | None) -> str:
    return (text or "").strip().lower()


def _uuid_forms(text: str) -> set[str]:
    """A VM's SMBIOS UUID as the guest may read it: as vSphere shows it, and with the first
    three fields byte-swapped (how older VMware virtual hardware hands it to Linux)."""
    value = _norm(text)
    parts = value.split("-")
    if len(parts) != 5 or any(
        len(part) != size for part, size in zip(parts, (8, 4, 4, 4, 12), strict=True)
    ):
        return {value}
    swapped = ["".join(reversed([p[i : i + 2] for i in range(0, len(p), 2)])) for p in parts[:3]]
    return {value, "-".join(swapped + parts[3:])}


def _machine_row(vm: Vm) -> dict:
    return {
        "external_id": vm.uuid or vm.id,
        "name": vm.name[:LABEL_MAX],
        "disks": [
            {
                "key": str(d.key)[:LABEL_MAX],
                "label": d.label[:LABEL_MAX],
                "size_bytes": d.capacity_bytes,
            }
            for d in vm.disks[:MAX_DISKS]
        ],
    }


def _placement(agent: Agent, owners: dict[str, tuple[Vm, Scope]], names: dict, scopes) -> tuple:
    """(its own VM or None, the scope it serves or None) for one appliance."""
    own = owners.get(_norm(agent.vm_uuid)) if agent.vm_uuid else None
    if own is None and agent.hostname:
        own = names.get(_norm(agent.hostname)) or names.get(_norm(agent.hostname).split(".")[0])
    if own is not None:
        return own
    if len(scopes) == 1:
        return None, scopes[0]
    return None, None


def _record(agent: Agent, *, serves: str, message: str) -> None:
    Agent.objects.for_customer(agent.customer_id).filter(pk=agent.pk).update(
        serves=serves[:255], discovery_message=message[:500], discovered_at=timezone.now()
    )


def cloud_machines_sync(cloud: Cloud) -> CloudMachinesSync:
    """Discover the cloud now and report each appliance's machines; idempotent."""
    agents = list(Agent.objects.for_customer(cloud.customer_id).filter(cloud=cloud).order_by("pk"))
    if not agents:
        return CloudMachinesSync(ok=True, message="No agent uses this cloud yet.")
    try:
        inventory = cloud_discover(cloud).inventory
    except (CloudCheckFailed, SealError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        Agent.objects.for_customer(cloud.customer_id).filter(cloud=cloud).update(
            discovery_message=f"Discovery failed: {message}"[:500]
        )
        return CloudMachinesSync(ok=False, message=message)
    scopes = list(inventory.scopes)
    members = {scope.id: _scope_vms(inventory, scope) for scope in scopes}
    owners, names = {}, {}
    for scope in scopes:
        for vm in members[scope.id]:
            for form in _uuid_forms(vm.bios_uuid or ""):
                if form:
                    owners.setdefault(form, (vm, scope))
            names.setdefault(_norm(vm.name), (vm, scope))
    placements = [(agent, *_placement(agent, owners, names, scopes)) for agent in agents]
    appliances = {own.id for _, own, _ in placements if own is not None}  # not replicated
    result = CloudMachinesSync(ok=True, message="")
    taken: dict[str, Agent] = {}
    for agent, _own, scope in placements:
        if scope is None:
            result.unplaced.append(agent.pk)
            _record(
                agent,
                serves="",
                message="Cannot tell which part of the cloud this agent stands in: its VM "
                "was not found (it reports its SMBIOS UUID; check that the appliance runs as "
                f"a VM of {cloud.name}).",
            )
            continue
        where = f"{scope.kind} {scope.path}"
        if scope.id in taken:
            result.unplaced.append(agent.pk)
            _record(agent, serves="", message=f"Agent {taken[scope.id].display_id} serves {where}.")
            continue
        taken[scope.id] = agent
        vms = [vm for vm in members[scope.id] if vm.id not in appliances]
        for start in range(0, len(vms), MAX_MACHINES):
            agent_inventory(agent, [_machine_row(vm) for vm in vms[start : start + MAX_MACHINES]])
        result.served[agent.pk] = scope.path
        result.machines += len(vms)
        _record(agent, serves=where, message=f"{len(vms)} machines discovered.")
    result.message = f"{result.machines} machines for {len(result.served)} agents."
    return result
