"""Read a vCenter's inventory in one PropertyCollector round trip (plus paging).

One ContainerView over the whole inventory and one ``RetrievePropertiesEx`` with a property
spec per type: a vCenter with thousands of VMs answers in a single call instead of one call
per VM, and properties are never read lazily (govmomi's vcsim 0.24 panics on a lazy read of an
unset property; RetrievePropertiesEx simply leaves it out).
"""

from __future__ import annotations

from pyVmomi import vim, vmodl

from . import Cluster, Datacenter, Disk, Host, Inventory, Scope, Vm

PC = vmodl.query.PropertyCollector

PROPERTIES = {
    vim.Datacenter: ["name", "parent"],
    vim.Folder: ["parent"],
    vim.ComputeResource: ["name", "parent"],  # also matches ClusterComputeResource
    vim.HostSystem: ["name", "parent"],
    vim.VirtualMachine: [
        "name",
        "runtime.host",
        "runtime.powerState",
        "config.instanceUuid",
        "config.uuid",
        "config.template",
        "config.hardware.device",
        "network",
    ],
    vim.Network: ["name", "parent"],  # also matches distributed port groups
}


def retrieve(content, properties=PROPERTIES) -> dict[str, tuple[object, dict]]:
    """``{moref id: (managed object, {property path: value})}`` for every object of the
    given types; unset properties are absent."""
    view = content.viewManager.CreateContainerView(content.rootFolder, list(properties), True)
    try:
        traversal = PC.TraversalSpec(
            name="view", type=vim.view.ContainerView, path="view", skip=False
        )
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
            propSet=[
                PC.PropertySpec(type=kind, pathSet=paths, all=False)
                for kind, paths in properties.items()
            ],
        )
        collector = content.propertyCollector
        found = {}
        result = collector.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=1000))
        while result is not None:
            for item in result.objects:
                found[item.obj._moId] = (item.obj, {p.name: p.val for p in item.propSet})
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(result.token)
        return found
    finally:
        view.Destroy()


def _ref(value) -> str | None:
    return value._moId if value is not None else None


def _disks(devices) -> list[Disk]:
    disks = []
    for device in devices or []:
        if not isinstance(device, vim.vm.device.VirtualDisk):
            continue
        capacity = getattr(device, "capacityInBytes", None) or (device.capacityInKB or 0) * 1024
        backing = device.backing
        disks.append(
            Disk(
                key=str(device.key),
                label=device.deviceInfo.label if device.deviceInfo else f"Disk {device.key}",
                capacity_bytes=int(capacity),
                path=getattr(backing, "fileName", "") or "",
            )
        )
    return sorted(disks, key=lambda d: int(d.key))


def build(objects: dict[str, tuple[object, dict]], *, cluster_level: bool) -> Inventory:
    """Turn :func:`retrieve`'s rows into the datacenter → cluster/host → VM tree."""
    kind = {mo_id: type(obj) for mo_id, (obj, _) in objects.items()}
    props = {mo_id: values for mo_id, (_, values) in objects.items()}

    def datacenter_of(mo_id: str | None) -> str | None:
        seen = 0
        while mo_id is not None and seen < 64:  # folders nest; a cycle would be a server bug
            if issubclass(kind.get(mo_id, object), vim.Datacenter):
                return mo_id
            mo_id = _ref(props.get(mo_id, {}).get("parent"))
            seen += 1
        return None

    datacenters = {}
    for mo_id, values in props.items():
        if issubclass(kind[mo_id], vim.Datacenter):
            datacenters[mo_id] = Datacenter(id=mo_id, name=values.get("name", mo_id))
    network_names = {}
    for mo_id, values in props.items():
        if issubclass(kind[mo_id], vim.Network):
            network_names[mo_id] = values.get("name", mo_id)
            dc = datacenters.get(datacenter_of(mo_id))
            if dc is not None and network_names[mo_id] not in dc.networks:
                dc.networks.append(network_names[mo_id])

    clusters, standalone = {}, {}  # compute resource id -> Cluster / the standalone Host
    for mo_id, values in props.items():
        if issubclass(kind[mo_id], vim.ClusterComputeResource):
            clusters[mo_id] = Cluster(id=mo_id, name=values.get("name", mo_id))
            dc = datacenters.get(datacenter_of(mo_id))
            if dc is not None:
                dc.clusters.append(clusters[mo_id])
    hosts = {}
    for mo_id, values in props.items():
        if not issubclass(kind[mo_id], vim.HostSystem):
            continue
        host = hosts[mo_id] = Host(id=mo_id, name=values.get("name", mo_id))
        parent = _ref(values.get("parent"))
        if parent in clusters:
            clusters[parent].hosts.append(host)
        else:
            standalone[parent] = host
            dc = datacenters.get(datacenter_of(parent))
            if dc is not None:
                dc.hosts.append(host)

    for mo_id, values in props.items():
        if not issubclass(kind[mo_id], vim.VirtualMachine) or values.get("config.template"):
            continue  # templates cannot run, so there is nothing to replicate
        host = hosts.get(_ref(values.get("runtime.host")))
        if host is None:
            continue  # orphaned or inaccessible: no agent could reach it
        host.vms.append(
            Vm(
                id=mo_id,
                name=values.get("name", mo_id),
                uuid=values.get("config.instanceUuid"),
                bios_uuid=values.get("config.uuid"),
                power_state=str(values["runtime.powerState"])
                if "runtime.powerState" in values
                else None,
                disks=_disks(values.get("config.hardware.device")),
                networks=sorted(
                    {network_names.get(_ref(n), _ref(n)) for n in values.get("network") or []}
                ),
            )
        )

    inventory = Inventory(datacenters=sorted(datacenters.values(), key=lambda d: d.name))
    for dc in inventory.datacenters:
        dc.networks.sort()
        dc.clusters.sort(key=lambda c: c.name)
        dc.hosts.sort(key=lambda h: h.name)
        for cluster in dc.clusters:
            cluster.hosts.sort(key=lambda h: h.name)
    for host in hosts.values():
        host.vms.sort(key=lambda v: v.name)
    inventory.scopes = scopes(inventory, cluster_level=cluster_level)
    return inventory


def scopes(inventory: Inventory, *, cluster_level: bool) -> list[Scope]:
    """Where agents go: per cluster at cluster level, per host otherwise.

    A standalone host belongs to no cluster, so at cluster level it is a scope of its own:
    its VMs would otherwise be discovered by no agent.
    """
    found = []
    for dc in inventory.datacenters:
        for cluster in dc.clusters:
            if cluster_level:
                count = sum(len(h.vms) for h in cluster.hosts)
                path = f"{dc.name}/{cluster.name}"
                found.append(Scope("cluster", cluster.id, cluster.name, path, count))
            else:
                for host in cluster.hosts:
                    path = f"{dc.name}/{cluster.name}/{host.name}"
                    found.append(Scope("host", host.id, host.name, path, len(host.vms)))
        for host in dc.hosts:
            found.append(Scope("host", host.id, host.name, f"{dc.name}/{host.name}", len(host.vms)))
    return found


def collect(content, *, cluster_level: bool) -> Inventory:
    return build(retrieve(content), cluster_level=cluster_level)


__all__ = ["PROPERTIES", "build", "collect", "retrieve", "scopes"]
