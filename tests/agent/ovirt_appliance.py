"""An oVirt appliance against the real agent API (the live server), the in-test engine (a
stand-in for the engine API) and a real data side (qcow2 volumes, qemu-nbd, the ovirt-imageio
daemon): a cloud registered at the ``cloud`` discovery level, an appliance enrolled in it, the
portal's discovery giving it the engine's VM ``web1`` (disk ``d1``) as a protected machine.
``run_job`` queues a job and runs it as the daemon would."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import ovirtsdk4
import ovirtsdk4.types as types

from agent.config import Config
from agent.http import client_from_config
from agent.ovirt.job import OVirtJob
from agent.restore import restore_snapshot
from clouds.models import Cloud
from clouds.services import agent_enroll, agent_heartbeat, enrollment_token_create
from clouds.services.cloud_machines import cloud_machines_sync
from clouds.services.clouds import cloud_create
from protection.models import JobTrigger, Machine, ReplicationJob
from protection.services.jobs import job_queue
from protection.services.machines import machines_start_protection
from tests.imageio_support import running_imageio
from tests.ovirt_storage import Storage
from tests.ovirt_support import Model, running_engine

MIB = 1 << 20
SIZE = 16 * MIB
VM, DISK = "web1", "d1"


def model() -> Model:
    m = Model()
    m.vms = [{"id": "vm1", "name": VM, "cluster": "cl1", "host": "h1", "status": "up",
              "disks": [DISK]}]  # fmt: skip
    m.disks = [{"id": DISK, "alias": "web1_Disk1", "size": SIZE}]
    return m


@contextlib.contextmanager
def ovirt_peer(folder: Path):
    with running_imageio(folder / "imageio") as imageio:
        storage = Storage(folder / "volumes", imageio, {DISK: SIZE})
        try:
            with running_engine(model=model(), storage=storage) as engine:
                yield engine, storage
        finally:
            storage.close()


class OVirtAppliance:
    def __init__(self, customer, url: str, folder: Path, engine, storage):
        self.customer, self.engine, self.storage = customer, engine, storage
        self.cloud = cloud_create(
            customer, platform="ovirt", name="engine", endpoint=engine.url,
            login="admin@internal", password="secret", options={"discovery_level": "cloud"},
        )  # fmt: skip
        token = enrollment_token_create(customer, platform="ovirt", cloud=self.cloud)
        enrolled = agent_enroll(token.text, hostname="appliance", version="test")
        self.agent = enrolled.agent
        agent_heartbeat(self.agent, version="test", hostname="appliance", vm_uuid="vm-self")
        assert cloud_machines_sync(self.cloud).ok
        path = folder / "agent.json"
        config = {
            "server": url, "credential": enrolled.text, "agent_id": self.agent.pk,
            "platform": "ovirt", "role": "appliance", "retries": 1, "threads": 2,
            "state_dir": str(folder / "state"), "poll_seconds": 1, "heartbeat_seconds": 1,
            "vm_uuid": "vm-self",
        }  # fmt: skip
        path.write_text(json.dumps(config))
        self.config = Config.load(path)
        self.client = client_from_config(self.config)
        self.sdk = ovirtsdk4.Connection(
            url=engine.url, username="admin@internal", password="secret", timeout=10
        )

    def machine(self) -> Machine:
        return Machine.objects.for_customer(self.customer).get(name=VM, agent=self.agent)

    def protect(self) -> None:
        machines_start_protection(
            self.customer, Machine.objects.for_customer(self.customer).filter(pk=self.machine().pk)
        )

    def set_cloud(self, **fields) -> None:
        Cloud.objects.for_customer(self.customer).filter(pk=self.cloud.pk).update(**fields)

    def run_job(self):
        job = job_queue(self.customer, self.machine(), trigger=JobTrigger.MANUAL)
        handed = self.client.json("POST", "jobs/next/", {})
        handed = handed.get("job", handed)
        assert handed["id"] == job.pk
        try:
            outcome = OVirtJob(self.client, handed, state_dir=self.config.state_dir,
                               threads=2).run()  # fmt: skip
        except Exception as exc:  # the test looks at it
            outcome = exc
        return outcome, ReplicationJob.objects.for_customer(self.customer).get(pk=job.pk)

    def snapshots(self):
        service = self.sdk.system_service().vms_service().vm_service("vm1").snapshots_service()
        return [s for s in service.list() if s.snapshot_type != types.SnapshotType.ACTIVE]

    def take_snapshot(self, description: str) -> None:
        service = self.sdk.system_service().vms_service().vm_service("vm1").snapshots_service()
        added = service.add(types.Snapshot(description=description, persist_memorystate=False))
        service.snapshot_service(added.id).get()  # locked -> ok

    def delete_snapshot(self, snapshot_id: str) -> None:
        service = self.sdk.system_service().vms_service().vm_service("vm1").snapshots_service()
        service.snapshot_service(snapshot_id).remove()

    def restore(self, snapshot_id, target: Path) -> bytes:
        restore_snapshot(self.client, str(snapshot_id), str(target))
        return target.read_bytes()

    def close(self) -> None:
        self.client.close()
        self.sdk.close()
