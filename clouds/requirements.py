"""What each platform's agent needs, as the product description lists it (wizard step 2).

Kept as data so step 2, the appliance READMEs and the tests read one source.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Requirements:
    summary: str
    permissions: list[str] = field(default_factory=list)
    recommended: list[str] = field(default_factory=list)
    ports: list[tuple[str, str]] = field(default_factory=list)  # (what, port)
    hardware: list[str] = field(default_factory=list)
    software: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


REQUIREMENTS = {
    "vmware": Requirements(
        summary="VMware Agent is an external replication agent deployed as a separate instance "
        "in the source environment, on each ESXi host that has machines to replicate.",
        permissions=[
            "Role “VMware Consolidated Backup user” in vCenter, with:",
            "Virtual machine – Configuration – Disk lease",
            "Virtual machine – Interact – Power On",
            "Virtual machine – Interact – Power Off",
            "Virtual machine – Provisioning – Allow read-only disk access",
            "Virtual machine – Provisioning – Allow virtual machine files upload",
            "Virtual machine – Snapshot management – Create snapshot",
            "Virtual machine – Snapshot management – Remove Snapshot",
            "Virtual machine – Configuration – Disk change tracking (access to CBT)",
        ],
        recommended=[
            "Global – Disable methods",
            "Global – Enable methods",
            "Global – Licenses",
            "With vCloud: Profile-driven storage – Profile-driven storage view",
        ],
        ports=[
            ("Acura host for Live Migration", "tcp/80, tcp/443"),
            ("vSphere host", "tcp/443"),
            ("ESXi host(s)", "tcp/udp/902"),
            ("Send logs to Acura cluster", "udp/12201"),
        ],
        hardware=[
            "Each agent instance: at least 2 CPUs and 4 GB RAM",
            "One agent instance on each ESXi host with machines to replicate",
            "At least 10% free space on VMware storage (snapshots keep a copy-on-write buffer)",
        ],
        software=["VMware Tools installed on the source machines"],
        notes=[
            "VMware snapshots add load on storage while they exist: adjust storage performance "
            "warning thresholds for replication.",
            "The agent VM carries the service parameter “hvragent”; vSphere may warn about it. "
            "It is deliberate and not a security risk.",
        ],
    ),
    "ovirt": Requirements(
        summary="oVirt Agent is an external replication agent deployed as a separate instance "
        "in the source environment, one per unit of the chosen discovery level.",
        permissions=["Superuser permissions for installation"],
        ports=[
            ("DR host", "tcp/80, tcp/443"),
            ("Send logs to the Acura cluster", "udp/12201"),
        ],
        hardware=[
            "Memory: at least 4 GB RAM",
            "CPU: at least 2 CPUs",
            "Disk space: at least 10 GB (the agent disk is a whole 10 GB VM disk)",
        ],
        notes=[
            "oVirt takes a snapshot at the start of each replication and deletes the previous "
            "one at its end: do not delete the latest snapshot of a source machine.",
        ],
    ),
    "linux": Requirements(
        summary="The Linux agent is installed on each machine to protect.",
        permissions=["sudo permissions for installation"],
        ports=[("Send data to Acura host", "tcp/443"), ("Send logs to Acura", "udp/12201")],
        hardware=[
            "Memory: 500 MB RAM",
            "Disk space: 100 MB for the product, and at least 15% of the disk size free for "
            "snapshots",
        ],
        software=["DKMS agents: DKMS, build tools and kernel headers (step 4 lists them)"],
    ),
    "windows": Requirements(
        summary="The Windows agent is installed on each machine to protect.",
        permissions=[
            "Administrative permissions for installation: install as the System Administrator "
            "or with Administrator privileges, or replication will fail",
        ],
        hardware=[
            "Memory: 2 GB RAM",
            "CPU: x64 processor",
            "Disk space: 100 MB for the product, and at least 15% of the disk size free for "
            "VSS snapshots",
        ],
        software=["Microsoft .NET Framework 4.0"],
    ),
}

# Kernels the pre-built snapshot driver packages are built for ("Show supported kernels").
# Other kernels need the DKMS package, which builds the driver on the machine.
SUPPORTED_KERNELS = {
    "debian": [
        ("Debian 11 (bullseye)", ["5.10.0-26-amd64", "5.10.0-27-amd64", "5.10.0-28-amd64"]),
        ("Debian 12 (bookworm)", ["6.1.0-18-amd64", "6.1.0-21-amd64", "6.1.0-25-amd64"]),
        ("Ubuntu 20.04 LTS", ["5.4.0-182-generic", "5.15.0-107-generic"]),
        ("Ubuntu 22.04 LTS", ["5.15.0-113-generic", "6.5.0-41-generic", "6.8.0-40-generic"]),
        ("Ubuntu 24.04 LTS", ["6.8.0-31-generic", "6.8.0-41-generic"]),
    ],
    "rhel": [
        ("CentOS 7 / RHEL 7", ["3.10.0-1160.el7.x86_64", "3.10.0-1160.119.1.el7.x86_64"]),
        ("RHEL 8 / Rocky 8 / Alma 8", ["4.18.0-513.5.1.el8_9.x86_64", "4.18.0-553.el8_10.x86_64"]),
        (
            "RHEL 9 / Rocky 9 / Alma 9",
            ["5.14.0-362.8.1.el9_3.x86_64", "5.14.0-427.13.1.el9_4.x86_64"],
        ),
    ],
}

# DKMS dependencies per distribution (step 4, DKMS instructions).
DKMS_COMMANDS = [
    (
        "Ubuntu",
        "apt-get update && apt-get install dkms perl make gcc libelf-dev "
        "linux-headers-$(uname -r) linux-headers-generic",
    ),
    (
        "Debian",
        "apt-get update && apt-get install dkms perl make gcc libelf-dev "
        "linux-headers-$(uname -r) linux-headers-amd64",
    ),
    (
        "RHEL/CentOS",
        "add the EPEL repository and run yum install dkms perl make gcc elfutils-libelf-devel "
        "kernel-devel-$(uname -r) kernel-devel",
    ),
]
