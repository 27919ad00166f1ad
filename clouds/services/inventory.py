"""The machines and disks an agent sees, upserted into its customer's inventory.

Everything the agent sends is checked before anything is written, and every problem is
named by its place (``machines[2].disks[0].size_bytes``), so a bad report changes nothing
and tells the agent's developer exactly what to fix. Machines are matched by
(customer, platform, external_id): the customer and platform are the agent's, so an agent
can never reach another customer's machine, whatever ids it sends.
"""

import ipaddress

from django.core.exceptions import ValidationError
from django.db import transaction

from protection.models import Disk, Machine, MachineStatus, Platform

from ..models import Agent

MAX_MACHINES = 5000
MAX_DISKS = 256
MAX_ADDRESSES = 64
MAX_CPUS = 65_536
MAX_RAM_MB = 2**40  # a pebibyte of RAM in MiB: beyond any machine, well inside the column
MAX_SIZE = 2**63 - 1

MACHINE_TEXT = {"external_id": 255, "name": 255, "os_name": 200}
DISK_TEXT = {"key": 255, "label": 255}


class _Checker:
    """Collects field errors by path; the values it returns are the cleaned ones."""

    def __init__(self):
        self.errors: dict[str, str] = {}

    def text(self, obj: dict, name: str, where: str, limit: int, required: bool):
        if name not in obj or obj[name] is None:
            if required:
                self.errors[f"{where}.{name}"] = "This field is required."
            return None
        value = obj[name]
        if not isinstance(value, str):
            self.errors[f"{where}.{name}"] = "Must be a string."
            return None
        value = value.strip()
        if required and not value:
            self.errors[f"{where}.{name}"] = "Must not be empty."
        elif len(value) > limit:
            self.errors[f"{where}.{name}"] = f"At most {limit} characters."
        return value

    def number(self, obj: dict, name: str, where: str, maximum: int, required: bool):
        if name not in obj or obj[name] is None:
            if required:
                self.errors[f"{where}.{name}"] = "This field is required."
            return None
        value = obj[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            self.errors[f"{where}.{name}"] = f"A whole number from 0 to {maximum}."
            return None
        return value

    def addresses(self, obj: dict, where: str):
        if obj.get("ip_addresses") is None:
            return None
        value = obj["ip_addresses"]
        if not isinstance(value, list) or len(value) > MAX_ADDRESSES:
            self.errors[f"{where}.ip_addresses"] = f"A list of at most {MAX_ADDRESSES} addresses."
            return None
        cleaned = []
        for i, address in enumerate(value):
            try:
                cleaned.append(str(ipaddress.ip_address(str(address).strip())))
            except ValueError:
                self.errors[f"{where}.ip_addresses[{i}]"] = f"{str(address)[:64]!r} is not an IP."
        return cleaned


def _check_disks(check: _Checker, item: dict, where: str) -> list[dict]:
    disks = item.get("disks", [])
    if not isinstance(disks, list) or len(disks) > MAX_DISKS:
        check.errors[f"{where}.disks"] = f"A list of at most {MAX_DISKS} disks."
        return []
    cleaned, keys = [], set()
    for j, disk in enumerate(disks):
        at = f"{where}.disks[{j}]"
        if not isinstance(disk, dict):
            check.errors[at] = "An object {key, label?, size_bytes}."
            continue
        row = {
            name: check.text(disk, name, at, limit, name == "key")
            for name, limit in DISK_TEXT.items()
        }
        row["size_bytes"] = check.number(disk, "size_bytes", at, MAX_SIZE, True)
        if row["key"]:
            if row["key"] in keys:
                check.errors[f"{at}.key"] = f"Disk {row['key']!r} is listed twice."
            keys.add(row["key"])
        cleaned.append(row)
    return cleaned


def inventory_clean(machines) -> list[dict]:
    """The report, checked and cleaned; ``ValidationError`` naming every problem."""
    check = _Checker()
    if not isinstance(machines, list):
        raise ValidationError({"machines": "A list of machines."}, code="invalid")
    if len(machines) > MAX_MACHINES:
        raise ValidationError(
            {"machines": f"At most {MAX_MACHINES} machines per report; {len(machines)} sent."},
            code="too_many",
        )
    cleaned, seen = [], set()
    for i, item in enumerate(machines):
        where = f"machines[{i}]"
        if not isinstance(item, dict):
            check.errors[where] = "An object {external_id, name, …, disks}."
            continue
        row = {
            name: check.text(item, name, where, limit, name != "os_name")
            for name, limit in MACHINE_TEXT.items()
        }
        row["ip_addresses"] = check.addresses(item, where)
        row["cpus"] = check.number(item, "cpus", where, MAX_CPUS, False)
        row["ram_mb"] = check.number(item, "ram_mb", where, MAX_RAM_MB, False)
        row["disks"] = _check_disks(check, item, where)
        if row["external_id"]:
            if row["external_id"] in seen:
                check.errors[f"{where}.external_id"] = (
                    f"Machine {row['external_id']!r} is listed twice."
                )
            seen.add(row["external_id"])
        cleaned.append(row)
    if check.errors:
        raise ValidationError(check.errors, code="invalid")
    return cleaned


def _new_status(platform: str) -> str:
    # Windows agents report what they find as Discovered (the product description).
    return MachineStatus.DISCOVERED if platform == Platform.WINDOWS else MachineStatus.UNPROTECTED


def agent_inventory(agent: Agent, machines) -> list[Machine]:
    """Upsert the reported machines and their disks; returns the machines (disks
    prefetched). New machines land in the agent's group, not protected. Disks that are
    no longer reported are kept: their snapshots stay restorable."""
    report = inventory_clean(machines)
    customer_id = agent.customer_id
    with transaction.atomic():
        known = {
            m.external_id: m
            for m in Machine.objects.for_customer(customer_id)
            .select_for_update()
            .filter(platform=agent.platform, external_id__in=[r["external_id"] for r in report])
        }
        result = []
        for row in report:
            machine = known.get(row["external_id"])
            created = machine is None
            if created:
                machine = Machine(
                    customer_id=customer_id,
                    platform=agent.platform,
                    external_id=row["external_id"],
                    group_id=agent.group_id,
                    status=_new_status(agent.platform),
                )
            reported = {"name": row["name"], "agent": agent}
            for name in ("os_name", "ip_addresses", "cpus", "ram_mb"):
                if row[name] is not None:
                    reported[name] = row[name]
            for name, value in reported.items():
                setattr(machine, name, value)
            # Only what the agent reports is written: status, group and schedule are the
            # portal's, and a concurrent Start Protection must not be overwritten.
            machine.save(update_fields=None if created else [*reported, "updated_at"])
            _upsert_disks(machine, row["disks"])
            result.append(machine.pk)
        by_pk = Machine.objects.for_customer(customer_id).prefetch_related("disks").in_bulk(result)
    return [by_pk[pk] for pk in result]


def _upsert_disks(machine: Machine, disks: list[dict]) -> None:
    existing = {
        d.key: d for d in Disk.objects.for_customer(machine.customer_id).filter(machine=machine)
    }
    for row in disks:
        disk = existing.get(row["key"])
        if disk is None:
            Disk.objects.create(
                customer_id=machine.customer_id,
                machine=machine,
                key=row["key"],
                label=row["label"] or "",
                size_bytes=row["size_bytes"],
            )
            continue
        changed = []
        if disk.size_bytes != row["size_bytes"]:
            disk.size_bytes = row["size_bytes"]
            changed.append("size_bytes")
        if row["label"] is not None and disk.label != row["label"]:
            disk.label = row["label"]
            changed.append("label")
        if changed:
            disk.save(update_fields=changed)
