"""Platform connectors: check a customer's platform credentials and discover its inventory.

``vmware`` (pyvmomi) and ``ovirt`` (ovirtsdk4) each offer ``check(...) -> CheckResult`` and
``discover(...) -> Inventory``. This package is pure Python and imports no Django models or
settings, so the wizard, services and tasks can call it alike (and tests can run it alone).

Every failure is a :class:`ConnectorError` whose ``kind`` lets the caller react (offer to trust
a certificate, highlight the password field) and whose ``message`` is a sentence for the
customer that names the endpoint. Passwords never appear in messages or logs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

KINDS = ("unreachable", "timeout", "tls", "auth", "api", "privileges")


class ConnectorError(Exception):
    """A platform check failed, for one of :data:`KINDS`.

    - ``unreachable``: name not resolved, connection refused, no route.
    - ``timeout``: no answer within the timeout.
    - ``tls``: the certificate is not trusted or differs from the pinned one; ``fingerprint``
      is the certificate's SHA-256 so the UI can offer "Trust this certificate".
    - ``auth``: wrong login or password.
    - ``api``: the endpoint is not a valid address, or what answers is not the expected API
      (also used for an endpoint the customer typed that cannot be parsed).
    - ``privileges``: logged in, but required privileges are missing (``missing`` names them).
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        fingerprint: str | None = None,
        missing: list[str] | None = None,
    ):
        if kind not in KINDS:
            raise ValueError(f"unknown connector error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.fingerprint = fingerprint
        self.missing = list(missing or [])

    def __repr__(self) -> str:
        return f"ConnectorError({self.kind!r}, {self.message!r})"


@dataclass
class Disk:
    key: str  # VMware: the device key ("2000"); oVirt: the disk id
    label: str
    capacity_bytes: int
    path: str  # VMware: the backing file "[ds] vm/disk.vmdk"; oVirt: the guest's "/dev/sda"


@dataclass
class Vm:
    id: str  # VMware: the managed object id ("vm-42"); oVirt: the VM id
    name: str
    uuid: str | None = None
    power_state: str | None = None
    # What the guest reads as its SMBIOS UUID (/sys/class/dmi/id/product_uuid): how an
    # appliance finds its own VM. VMware: config.uuid; oVirt: the VM id.
    bios_uuid: str | None = None
    disks: list[Disk] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)  # VMware only


@dataclass
class Host:
    id: str
    name: str
    vms: list[Vm] = field(default_factory=list)


@dataclass
class Cluster:
    id: str
    name: str
    hosts: list[Host] = field(default_factory=list)
    vms: list[Vm] = field(default_factory=list)  # oVirt VMs that run on no host (down)


@dataclass
class Datacenter:
    id: str
    name: str
    clusters: list[Cluster] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)  # VMware standalone hosts
    networks: list[str] = field(default_factory=list)


@dataclass
class Scope:
    """One unit an agent must be deployed per at the chosen discovery level."""

    kind: str  # "cluster", "host", "datacenter" or "cloud"
    id: str
    name: str
    path: str  # "DC0/DC0_C0": unique and readable
    vms: int


@dataclass
class Inventory:
    """The discovered tree, JSON-serializable through :meth:`to_dict`."""

    datacenters: list[Datacenter] = field(default_factory=list)
    scopes: list[Scope] = field(default_factory=list)

    def vms(self) -> list[Vm]:
        found = []
        for dc in self.datacenters:
            for cluster in dc.clusters:
                found += cluster.vms
                for host in cluster.hosts:
                    found += host.vms
            for host in dc.hosts:
                found += host.vms
        return found

    def hosts(self) -> list[Host]:
        found = []
        for dc in self.datacenters:
            for cluster in dc.clusters:
                found += cluster.hosts
            found += dc.hosts
        return found

    @property
    def counts(self) -> dict[str, int]:
        vms = self.vms()
        return {
            "datacenters": len(self.datacenters),
            "clusters": sum(len(dc.clusters) for dc in self.datacenters),
            "hosts": len(self.hosts()),
            "vms": len(vms),
            "disks": sum(len(vm.disks) for vm in vms),
            "networks": sum(len(dc.networks) for dc in self.datacenters),
        }

    def to_dict(self) -> dict:
        return {
            "datacenters": [asdict(dc) for dc in self.datacenters],
            "scopes": [asdict(scope) for scope in self.scopes],
            "counts": self.counts,
        }


@dataclass
class CheckResult:
    """What a successful check learned: the product, the certificate to pin, the inventory."""

    product: str
    fingerprint: str | None
    inventory: Inventory
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "product": self.product,
            "fingerprint": self.fingerprint,
            "warnings": list(self.warnings),
            "inventory": self.inventory.to_dict(),
        }
