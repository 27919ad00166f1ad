"""What a Linux agent reports about its own host: the machine and its disks.

The machine's ``external_id`` is stable across reinstalls of the agent: the config's
``machine.external_id`` when set, else ``/etc/machine-id`` (systemd's, also what the portal
shows for a Linux host). Disks come from the config's ``disks`` or, without one, from
``/sys/block`` minus loop, ram and zram devices (and empty ones such as an unloaded CD drive).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import socket
import time
from pathlib import Path

from .disk import SourceDisk
from .errors import ServerError

SYS_BLOCK = Path("/sys/block")
SKIP_PREFIXES = ("loop", "ram", "zram")


def machine_id(config) -> str:
    configured = (config.get("machine") or {}).get("external_id")
    if configured:
        return str(configured)
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            value = Path(path).read_text().strip()
            if value:
                return value
    return socket.gethostname()


DMI_UUID = Path("/sys/class/dmi/id/product_uuid")


def is_appliance(config) -> bool:
    """VMware / oVirt appliances replicate their cloud's VMs, which the portal discovers for
    them; they never report the VM they run in as a machine."""
    return config.get("role") == "appliance"


def vm_uuid(config, source: Path = DMI_UUID) -> str:
    """The SMBIOS UUID of the VM this runs in (config ``vm_uuid`` first), lower case; the
    portal matches it to the cloud's VMs to learn which host or cluster this appliance
    serves. Empty when unknown (the file is root-only and absent outside VMs)."""
    configured = config.get("vm_uuid")
    if configured:
        return str(configured).strip().lower()
    with contextlib.suppress(OSError):
        return source.read_text().strip().lower()
    return ""


def machine_name(config) -> str:
    return str((config.get("machine") or {}).get("name") or socket.gethostname())


def os_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return f"Linux {os.uname().release}"


def ip_addresses() -> list[str]:
    """The host's non-loopback addresses (IPv4 from /proc/net/fib_trie, IPv6 from
    /proc/net/if_inet6, link-local left out); best effort, never an error."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        # fib_trie lists each local address on the line before its "/32 host LOCAL" line.
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
        for prev, line in itertools.pairwise(lines):
            if "/32 host LOCAL" in line:
                address = prev.strip().split()[-1]
                if not address.startswith("127.") and address not in found:
                    found.append(address)
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 6 and fields[5] != "lo":
                raw = fields[0]
                address = ":".join(raw[i : i + 4] for i in range(0, 32, 4))
                packed = socket.inet_pton(socket.AF_INET6, address)
                text = socket.inet_ntop(socket.AF_INET6, packed)
                if not text.startswith("fe80") and text not in found:
                    found.append(text)
    return found


def ram_mb() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def block_devices(root: Path = SYS_BLOCK) -> dict[str, str]:
    """{name: /dev/name} of the host's disks, without loop/ram/zram and empty devices."""
    found = {}
    with contextlib.suppress(OSError):
        for entry in sorted(root.iterdir()):
            name = entry.name
            if name.startswith(SKIP_PREFIXES):
                continue
            with contextlib.suppress(OSError, ValueError):
                if int((entry / "size").read_text().strip()) == 0:
                    continue
            found[name] = f"/dev/{name}"
    return found


def _sys_size(name: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int((SYS_BLOCK / name / "size").read_text().strip()) * 512
    return None


def _label(path: str) -> str:
    name = Path(path).name
    with contextlib.suppress(OSError):
        return (SYS_BLOCK / name / "device" / "model").read_text().strip()
    return ""


def disk_entries(disks: dict[str, str]) -> list[dict]:
    """Inventory entries ``{key, label, size_bytes}``; a disk whose size cannot be read is
    left out (the replication of it reports the real error)."""
    entries = []
    for key, path in disks.items():
        size = None
        with contextlib.suppress(Exception), SourceDisk(path, key) as disk:
            size = disk.size
        if size is None:
            size = _sys_size(Path(path).name) if path.startswith("/dev/") else None
        if size is None:
            continue
        entries.append({"key": key, "label": _label(path) or path, "size_bytes": size})
    return entries


def configured_disks(config) -> dict[str, str]:
    """Config ``disks`` (key → path), else the host's block devices."""
    return config.disks or block_devices()


def machine_entry(config, disks: dict[str, str] | None = None) -> dict:
    """The host as one inventory machine; ``disks`` (key → path) overrides the config's."""
    return {
        "external_id": machine_id(config),
        "name": machine_name(config),
        "os_name": os_name(),
        "ip_addresses": ip_addresses(),
        "cpus": os.cpu_count(),
        "ram_mb": ram_mb(),
        "disks": disk_entries(disks if disks is not None else configured_disks(config)),
    }


def report(client, config, disks: dict[str, str] | None = None) -> dict:
    """POST inventory/ with the host; returns the server's machine entry for it."""
    return _post(client, machine_entry(config, disks))


def _post(client, entry: dict) -> dict:
    answer = client.json("POST", "inventory/", {"machines": [entry]})
    for machine in (answer or {}).get("machines", []):
        if machine.get("external_id") == entry["external_id"]:
            return machine
    raise ServerError(200, f"the inventory answer does not list machine {entry['external_id']}")


CACHE_FILE = "inventory.json"
CACHE_MAX_AGE = 24 * 3600  # report at least daily even when nothing changed


def _cache_key(config, entry: dict) -> str:
    """What the cached answer is valid for: this server, this credential, this exact report."""
    who = {
        "server": config.server,
        "credential": hashlib.sha256((config.credential or "").encode()).hexdigest(),
        "machine": entry,
    }
    return hashlib.sha256(json.dumps(who, sort_keys=True).encode()).hexdigest()


def report_cached(client, config, disks: dict[str, str] | None = None) -> tuple[dict, bool]:
    """:func:`report`, skipped when the host reports exactly what it reported last time (to
    this server, with this credential, within a day): the server's answer then is the one
    cached in ``state_dir``. Returns ``(machine, from_cache)``; a caller that finds the cached
    machine gone (404) calls :func:`forget_report` and reports again."""
    entry = machine_entry(config, disks)
    key = _cache_key(config, entry)
    path = Path(config.state_dir) / CACHE_FILE
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        cached = json.loads(path.read_text())
        fresh = 0 <= time.time() - float(cached["at"]) < CACHE_MAX_AGE
        if cached["key"] == key and fresh and isinstance(cached["machine"].get("id"), int):
            return cached["machine"], True
    machine = _post(client, entry)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "at": time.time(), "machine": machine}))
        os.replace(tmp, path)
    return machine, False


def forget_report(config) -> None:
    with contextlib.suppress(OSError):
        (Path(config.state_dir) / CACHE_FILE).unlink()
