"""A VMware appliance against the real agent API (pytest-django's live server) and the vSphere
simulator: a cloud registered with vcsim's certificate trusted, an appliance enrolled in it
and standing in ``DC0_H0_VM0``, the portal's discovery giving it the other VMs of its ESXi host
as machines, protected. ``run_job`` queues a job and runs it as the daemon would."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from agent.config import Config
from agent.http import client_from_config
from agent.restore import restore_snapshot
from agent.vmware.job import VMwareJob
from clouds.connectors import ConnectorError, tls, vmware
from clouds.models import Cloud
from clouds.services import agent_enroll, agent_heartbeat, enrollment_token_create
from clouds.services.cloud_machines import cloud_machines_sync
from clouds.services.clouds import cloud_create
from protection.models import JobTrigger, Machine, ReplicationJob
from protection.services.jobs import job_queue
from protection.services.machines import machines_start_protection
from tests.vsphere_support import disk_read, guest_write

MIB = 1 << 20


def vcsim_fingerprint(host, port) -> str:
    try:
        tls.probe(host, port, timeout=5)
    except ConnectorError as refused:
        return refused.fingerprint
    raise AssertionError("vcsim's self-signed certificate was trusted")


class Appliance:
    def __init__(self, customer, url: str, folder: Path, host: str, port: int, **options):
        self.customer, self.host, self.port, self.folder = customer, host, port, folder
        fingerprint = vcsim_fingerprint(host, port)
        self.cloud = cloud_create(
            customer, platform="vmware", name=f"vcenter-{os.urandom(2).hex()}",
            endpoint=f"{host}:{port}", login="acura", password="pw",
            tls_fingerprint=fingerprint, options=options,
        )  # fmt: skip
        tree = vmware.discover(
            f"{host}:{port}", "acura", "pw", cluster_level=False,
            tls_fingerprint=fingerprint, timeout=10,
        )  # fmt: skip
        self.vms = {vm.name: vm for vm in tree.vms()}
        token = enrollment_token_create(customer, platform="vmware", cloud=self.cloud)
        enrolled = agent_enroll(token.text, hostname="appliance", version="test")
        self.agent = enrolled.agent
        agent_heartbeat(
            self.agent, version="test", hostname="appliance",
            vm_uuid=self.vms["DC0_H0_VM0"].bios_uuid,
        )  # fmt: skip
        assert cloud_machines_sync(self.cloud).ok
        self.config_path = folder / "agent.json"
        self.config_path.write_text(
            json.dumps(
                {
                    "server": url, "credential": enrolled.text, "agent_id": self.agent.pk,
                    "platform": "vmware", "role": "appliance", "retries": 1, "threads": 2,
                    "state_dir": str(folder / "state"), "poll_seconds": 1,
                    "heartbeat_seconds": 1, "vm_uuid": self.vms["DC0_H0_VM0"].bios_uuid,
                }
            )
        )  # fmt: skip
        self.config = Config.load(self.config_path)
        self.client = client_from_config(self.config)

    def machine(self, name: str) -> Machine:
        return Machine.objects.for_customer(self.customer).get(name=name, agent=self.agent)

    def protect(self, *names: str) -> None:
        machines = Machine.objects.for_customer(self.customer).filter(
            agent=self.agent, name__in=names
        )
        assert machines.count() == len(names)
        machines_start_protection(self.customer, machines)

    def moid(self, name: str) -> str:
        return self.vms[name].id

    def disk_key(self, name: str) -> int:
        """The key of the disk vcsim gives every VM."""
        return int(self.vms[name].disks[0].key)

    def write(self, name: str, offset: int, data: bytes, key: int | None = None) -> None:
        key = key or self.disk_key(name)
        guest_write(self.host, self.port, self.moid(name), key, offset, data)

    def read(self, name: str, offset: int, length: int, key: int | None = None) -> bytes:
        key = key or self.disk_key(name)
        return disk_read(self.host, self.port, self.moid(name), key, offset, length)

    def whole_disk(self, name: str, size: int, key: int | None = None) -> bytes:
        return b"".join(
            self.read(name, offset, min(4 * MIB, size - offset), key)
            for offset in range(0, size, 4 * MIB)
        )

    def run_job(self, name: str, **kwargs):
        """Queue a job for VM ``name``, take it from ``jobs/next/`` and run it; returns
        ``(result or the AgentError raised, the job row)``."""
        job = job_queue(self.customer, self.machine(name), trigger=JobTrigger.MANUAL)
        handed = self.client.json("POST", "jobs/next/", {})
        handed = handed.get("job", handed)
        assert handed["id"] == job.pk
        runner = VMwareJob(self.client, handed, state_dir=self.config.state_dir, threads=2)
        try:
            outcome = runner.run()
        except Exception as exc:  # the test looks at it
            outcome = exc
        return outcome, ReplicationJob.objects.for_customer(self.customer).get(pk=job.pk)

    def restore(self, snapshot_id, target: Path) -> bytes:
        restore_snapshot(self.client, str(snapshot_id), str(target))
        return target.read_bytes()

    def set_cloud(self, **fields) -> None:
        """Change the cloud's settings (what Manage Clouds saves)."""
        Cloud.objects.for_customer(self.customer).filter(pk=self.cloud.pk).update(**fields)

    # -- the simulator seen through pyVmomi, as a vSphere admin would see it -------------------

    def vm(self, name: str):
        if not hasattr(self, "_si"):
            self._si = SmartConnect(
                host=self.host, port=self.port, user="acura", pwd="pw",
                disableSslCertValidation=True,
            )  # fmt: skip
        return self._si.content.searchIndex.FindByInventoryPath(f"DC0/vm/{name}")

    def snapshot_names(self, name: str) -> list[str]:
        tree = self.vm(name).snapshot
        names, pending = [], list(tree.rootSnapshotList) if tree is not None else []
        while pending:
            node = pending.pop(0)
            names.append(node.name)
            pending.extend(node.childSnapshotList or [])
        return names

    def take_snapshot(self, name: str, snapshot: str) -> None:
        WaitForTask(self.vm(name).CreateSnapshot_Task(snapshot, "", False, False))

    def power_state(self, name: str) -> str:
        return str(self.vm(name).runtime.powerState)

    def change_tracking(self, name: str) -> bool:
        return bool(self.vm(name).config.changeTrackingEnabled)

    def set_change_tracking(self, name: str, on: bool) -> None:
        spec = vim.vm.ConfigSpec(changeTrackingEnabled=on)
        WaitForTask(self.vm(name).ReconfigVM_Task(spec))

    def disks(self, name: str) -> dict[int, object]:
        devices = self.vm(name).config.hardware.device
        return {d.key: d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)}

    def reconfigure_disk(self, name: str, operation: str, device, file_operation=None) -> None:
        change = vim.vm.device.VirtualDeviceSpec(operation=operation, device=device)
        if file_operation:
            change.fileOperation = file_operation
        WaitForTask(self.vm(name).ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[change])))

    def add_disk(self, name: str, mib: int) -> int:
        """A new thin disk on the first disk's controller; returns its key."""
        first = self.disks(name)[self.disk_key(name)]
        before = set(self.disks(name))
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            diskMode="persistent", fileName="[LocalDS_0]", thinProvisioned=True
        )
        device = vim.vm.device.VirtualDisk(
            key=-1, controllerKey=first.controllerKey, unitNumber=1, capacityInKB=mib * 1024,
            backing=backing,
        )  # fmt: skip
        self.reconfigure_disk(name, "add", device, "create")
        (key,) = set(self.disks(name)) - before
        return key

    def grow_disk(self, name: str, key: int, mib: int) -> None:
        device = self.disks(name)[key]
        device.capacityInKB, device.capacityInBytes = mib * 1024, mib * MIB
        self.reconfigure_disk(name, "edit", device)

    def remove_disk(self, name: str, key: int) -> None:
        self.reconfigure_disk(name, "remove", self.disks(name)[key], "destroy")

    def discover(self) -> None:
        """The portal's periodic discovery of the cloud (what a worker runs)."""
        assert cloud_machines_sync(self.cloud).ok

    def close(self):
        self.client.close()
        if hasattr(self, "_si"):
            Disconnect(self._si)
