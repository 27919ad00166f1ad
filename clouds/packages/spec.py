"""What a download builds: the platform and its options, checked once, and the file it yields.

Django-free on purpose: the builders run in the web process (on a download) and in plain unit
tests alike. The wizard's forms validate the same choices for people (``clouds/network.py``);
this module refuses what a builder could not turn into a working package, with a
``ValueError`` that says which field and why.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from dataclasses import dataclass

PLATFORMS = ("linux", "windows", "vmware", "ovirt")
DISTROS = ("debian", "rhel")
DRIVERS = ("prebuilt", "dkms")
APPLIANCES = ("vmware", "ovirt")

# The appliance archive is neither the OVA (VMware) nor the RAW disk (oVirt) the product
# description names: calling it .ova/.raw would promise an image it is not. "hvragent" is the
# product's own name for the appliance (the VMware extraConfig parameter), so it leads.
_FILENAMES = {
    ("linux", "debian"): "hlragent.deb",
    ("linux", "rhel"): "hlragent.rpm",
    ("windows", None): "hwragent.zip",
    ("vmware", None): "hvragent-vmware-appliance.tar.gz",
    ("ovirt", None): "hvragent-ovirt-appliance.tar.gz",
}
_CONTENT_TYPES = {
    ".deb": "application/vnd.debian.binary-package",
    ".rpm": "application/x-rpm",
    ".zip": "application/zip",
    ".tar.gz": "application/gzip",
}


@dataclass(frozen=True)
class PackageSpec:
    """One package variant. ``network`` is normalized on construction (appliances: DHCP when
    not given), so two specs that build the same bytes compare equal."""

    platform: str
    distro: str | None = None  # linux: "debian" | "rhel"
    driver: str | None = None  # linux: "prebuilt" (default) | "dkms"
    network: dict | None = None  # appliances: {"mode": "dhcp"} or the static settings

    def __post_init__(self):
        if self.platform not in PLATFORMS:
            raise ValueError(
                f"unknown platform {self.platform!r}: expected one of {', '.join(PLATFORMS)}"
            )
        if self.platform == "linux":
            if self.distro not in DISTROS:
                raise ValueError(
                    f"a linux package needs distro {' or '.join(map(repr, DISTROS))} "
                    f"(Debian/Ubuntu or CentOS/RHEL), not {self.distro!r}"
                )
            driver = self.driver or "prebuilt"
            if driver not in DRIVERS:
                raise ValueError(
                    f"unknown driver {self.driver!r}: expected {' or '.join(map(repr, DRIVERS))}"
                )
            object.__setattr__(self, "driver", driver)
        elif self.distro or self.driver:
            raise ValueError(
                f"distro and driver apply to linux packages only, not to {self.platform!r}"
            )
        if self.platform in APPLIANCES:
            object.__setattr__(self, "network", normalize_network(self.network))
        elif self.network:
            raise ValueError(
                f"network settings apply to the vmware/ovirt appliance only, not to "
                f"{self.platform!r}"
            )
        else:
            object.__setattr__(self, "network", None)

    def __hash__(self) -> int:  # network is a dict: hash its canonical JSON
        return hash(json.dumps(dataclasses.astuple(self), sort_keys=True))

    @property
    def name(self) -> str:
        """The product's name for this agent: hlragent (Linux), hwragent, hvragent."""
        return {"linux": "hlragent", "windows": "hwragent"}.get(self.platform, "hvragent")


def normalize_network(network: dict | None) -> dict:
    """``{"mode": "dhcp"}`` or ``{"mode": "static", "ip", "netmask", "prefix", "gateway",
    "dns": [...]}`` with every address checked; ``ValueError`` naming the bad field."""
    if not network:
        return {"mode": "dhcp"}
    if not isinstance(network, dict):
        raise ValueError(f"network must be a dict, not {type(network).__name__}")
    mode = network.get("mode") or "dhcp"
    if mode == "dhcp":
        return {"mode": "dhcp"}
    if mode != "static":
        raise ValueError(f"network mode must be 'dhcp' or 'static', not {mode!r}")
    ip = _ipv4(network.get("ip"), "ip")
    gateway = _ipv4(network.get("gateway"), "gateway")
    try:
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{network.get('netmask')}").prefixlen
    except ValueError:
        raise ValueError(
            f"network netmask {network.get('netmask')!r} is not a subnet mask "
            "(for example 255.255.0.0)"
        ) from None
    subnet = ipaddress.IPv4Network(f"{ip}/{prefix}", strict=False)
    if gateway not in subnet:
        raise ValueError(f"network gateway {gateway} is outside the agent's subnet {subnet}")
    dns = network.get("dns") or []
    if isinstance(dns, str):
        dns = [part for part in (p.strip() for p in dns.split(",")) if part]
    if not dns:
        raise ValueError("static network settings need at least one DNS server")
    return {
        "mode": "static",
        "ip": str(ip),
        "netmask": str(subnet.netmask),
        "prefix": prefix,
        "gateway": str(gateway),
        "dns": [str(_ipv4(server, "dns")) for server in dns],
    }


def _ipv4(value, field: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(str(value or "").strip())
    except ValueError:
        raise ValueError(f"network {field} {value!r} is not an IPv4 address") from None


def package_filename(spec: PackageSpec) -> str:
    """The file the download serves (and the wizard's curl command names)."""
    return _FILENAMES[(spec.platform, spec.distro if spec.platform == "linux" else None)]


def package_content_type(spec: PackageSpec) -> str:
    name = package_filename(spec)
    return next(kind for ext, kind in _CONTENT_TYPES.items() if name.endswith(ext))
