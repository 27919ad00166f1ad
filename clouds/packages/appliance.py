"""The VMware / oVirt appliance package: ``hvragent-<platform>-appliance.tar.gz``.

Not the bootable OVA / RAW image the product description names (building one needs an OS
image, which this server does not have): the archive carries what such an image would hold
of ours, the agent, its package config, the systemd unit and the network settings (a
NetworkManager keyfile), plus ``install.sh`` for a Linux VM the customer creates and a
README that says plainly what a production image would add.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from .spec import PackageSpec, package_filename
from .staging import AGENT_VERSION, Stage, config_json, render, write_tar_gz

NAME = "hvragent"
PREFIX = "/opt/hvragent"
CONFIG = "/etc/hvragent/agent.json"
KEYFILE = "etc/NetworkManager/system-connections/hvragent.nmconnection"
_NAMESPACE = uuid.UUID("8f6c2d4a-1b7e-4c39-a0d2-6e5f4b3c2a19")

PLATFORMS = {
    "vmware": {
        "title": "VMware vSphere",
        "image": "OVA file",
        "disk_api": "VMware snapshots and CBT",
        "production": (
            '- the "hvragent" extraConfig parameter in the OVF descriptor, which marks the\n'
            "  VM as the agent appliance (vSphere may warn about this unknown configuration\n"
            "  parameter: it is added deliberately and is not a security risk), and\n"
            "  VMware Tools."
        ),
        "deployment": (
            "Deploy one agent VM on each ESXi host that runs machines you want to protect,\n"
            "then start it. Each agent VM needs at least 2 CPUs and 4 GB RAM.\n"
            "Ports: the Acura host tcp/80 and tcp/443, the vSphere host tcp/443, the ESXi\n"
            "hosts tcp/udp/902, logs to the Acura cluster udp/12201."
        ),
    },
    "ovirt": {
        "title": "oVirt / zVirt",
        "image": "RAW disk image",
        "disk_api": "the oVirt image transfer API",
        "production": "- a fixed-size 10 GB disk as the RAW image, and qemu-guest-agent.",
        "deployment": (
            "Deploy agent VMs according to the cloud's discovery level: one (and only one)\n"
            'per cluster for "Cluster", likewise per host, per data center, or one for\n'
            "the whole cloud; then start them. Each agent VM needs at least 4 GB RAM,\n"
            "2 CPUs and a 10 GB disk (superuser permissions to install).\n"
            "Ports: the DR host tcp/80 and tcp/443, logs to the Acura cluster udp/12201."
        ),
    },
}


def nm_keyfile(network: dict) -> str:
    """The NetworkManager connection "hvragent" for these (normalized) settings: DHCP, or a
    static address with gateway and DNS servers; it binds to any Ethernet device."""
    connection_uuid = uuid.uuid5(_NAMESPACE, json.dumps(network, sort_keys=True))
    lines = [
        "[connection]",
        "id=hvragent",
        f"uuid={connection_uuid}",
        "type=ethernet",
        "autoconnect=true",
        "autoconnect-priority=100",
        "",
        "[ethernet]",
        "",
        "[ipv4]",
    ]
    if network["mode"] == "static":
        lines += [
            "method=manual",
            f"address1={network['ip']}/{network['prefix']},{network['gateway']}",
            "dns=" + "".join(f"{server};" for server in network["dns"]),
            "ignore-auto-dns=true",
            "may-fail=false",
            "",
            "[ipv6]",
            "method=ignore",
        ]
    else:
        lines += ["method=auto", "", "[ipv6]", "method=auto"]
    return "\n".join(lines) + "\n"


def network_summary(network: dict) -> str:
    if network["mode"] != "static":
        return "DHCP."
    return (
        f"static, address {network['ip']} netmask {network['netmask']}, gateway "
        f"{network['gateway']}, DNS {', '.join(network['dns'])}."
    )


def build_archive(spec: PackageSpec, config: dict, work: Path, target: Path) -> None:
    archive = package_filename(spec)
    top = archive.removesuffix(".tar.gz")
    network = spec.network
    config = {**config, "network": network}  # the appliance's settings travel with it
    stage = Stage(work / top)
    files = Stage(stage.root / "files")
    values = {"name": NAME, "prefix": PREFIX, "config": CONFIG}
    # Each appliance carries its platform's job runner (agent/vmware or agent/ovirt, with its
    # SDK as an appliance-only requirement); host agents carry neither.
    files.copy_agent(f"{PREFIX[1:]}/agent", subpackages=(spec.platform,))
    files.write(f"{PREFIX[1:]}/bin/{NAME}-start", render("linux/start", **values), 0o755)
    files.write("usr/bin/acura-agent", render("linux/acura-agent", **values), 0o755)
    files.write(CONFIG[1:], config_json(config), 0o600)
    files.write("etc/hvragent/network.json", json.dumps(network, indent=2) + "\n")
    files.write(KEYFILE, nm_keyfile(network), 0o600)
    files.write(f"etc/systemd/system/{NAME}.service", render("linux/unit.service", **values))

    about = PLATFORMS[spec.platform]
    customer = (config.get("customer") or {}).get("slug") or "-"
    readme = render(
        "appliance/README.txt",
        title=about["title"],
        image=about["image"],
        version=AGENT_VERSION,
        server=" ".join(str(config["server"]).split()),
        customer=customer,
        production=about["production"],
        deployment=about["deployment"],
        disk_api=about["disk_api"],
        archive=archive,
        top=top,
        network=network_summary(network),
    )
    stage.write("README.txt", readme)
    requires = {"vmware": "pyVmomi", "ovirt": "ovirtsdk4"}[spec.platform]
    install = render(
        "appliance/install.sh",
        title=about["title"],
        requires=requires,
        requirements=f"requirements-{spec.platform}.txt",
    )
    stage.write("install.sh", install, 0o755)
    stage.settle()
    write_tar_gz(target, stage, top)
