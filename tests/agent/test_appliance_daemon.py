"""A VMware / oVirt appliance's daemon: it tells the portal its own VM's SMBIOS UUID in its
heartbeat, never reports the VM it runs in as a machine (the portal discovers its cloud's
VMs for it), and runs a VM's job through its platform: an engine that cannot be reached fails
the job with a clear message (the jobs themselves: tests/agent/test_vmware_job.py and
tests/agent/test_ovirt_job.py)."""

import json
import os
import threading

import pytest

from agent import inventory
from agent.config import Config
from agent.daemon import Daemon
from agent.http import client_from_config
from clouds.models import Agent
from clouds.services import agent_enroll, enrollment_token_create
from clouds.services.clouds import cloud_create
from protection.models import JobState, JobTrigger, Machine, ReplicationJob
from protection.services.jobs import job_queue
from protection.services.machines import machines_start_protection
from tests.e2e_support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_vm_uuid_comes_from_the_config_or_the_dmi_file(tmp_path):
    dmi = tmp_path / "product_uuid"
    assert inventory.vm_uuid({}, dmi) == ""
    dmi.write_text("4231A7E0-0D6B-45C8-A0B8-1D2E3F405162\n")
    assert inventory.vm_uuid({}, dmi) == "4231a7e0-0d6b-45c8-a0b8-1d2e3f405162"
    assert inventory.vm_uuid({"vm_uuid": "ABC"}, dmi) == "abc"
    assert inventory.is_appliance({"role": "appliance"})
    assert not inventory.is_appliance({"role": "host"}) and not inventory.is_appliance({})


def test_an_appliance_reports_its_vm_and_no_machine_and_fails_an_unreachable_engine_clearly(
    live_server, customer, tmp_path
):
    cloud = cloud_create(
        customer, platform="ovirt", name="engine", endpoint="engine.invalid",
        login="backup", password="pw", check=False,
    )  # fmt: skip
    token = enrollment_token_create(customer, platform="ovirt", cloud=cloud)
    enrolled = agent_enroll(token.text, hostname="appliance-01", version="test")
    path = tmp_path / "agent.json"
    path.write_text(
        json.dumps(
            {
                "server": live_server.url,
                "credential": enrolled.text,
                "agent_id": enrolled.agent.pk,
                "platform": "ovirt",
                "role": "appliance",
                "vm_uuid": "4231A7E0-0D6B-45C8-A0B8-1D2E3F405162",
                "retries": 1,
                "poll_seconds": 1,
                "heartbeat_seconds": 1,
                "state_dir": str(tmp_path / "state"),
            }
        )
    )
    config = Config.load(path)
    # A VM of its cloud, discovered for it by the portal and protected by the customer.
    vm = Machine.objects.create(
        customer=customer, platform="ovirt", external_id=f"vm-{os.urandom(3).hex()}",
        name="web-vm", agent=enrolled.agent,
    )  # fmt: skip
    machines_start_protection(customer, Machine.objects.for_customer(customer).filter(pk=vm.pk))
    daemon = Daemon(config)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_until(
            lambda: (
                Agent.objects.for_customer(customer).get(pk=enrolled.agent.pk).vm_uuid
                == "4231a7e0-0d6b-45c8-a0b8-1d2e3f405162"
            )
        )
        job = job_queue(customer, Machine.objects.for_customer(customer).get(pk=vm.pk),
                        trigger=JobTrigger.MANUAL)  # fmt: skip
        done = wait_until(
            lambda: (
                ReplicationJob.objects.for_customer(customer)
                .filter(pk=job.pk, state=JobState.FAILED)
                .first()
            )
        )
    finally:
        daemon.stop("test over")
        runner.join(timeout=30)
    assert "cannot reach server oVirt engine engine.invalid:443" in done.error_message
    assert list(Machine.objects.for_customer(customer).values_list("name", flat=True)) == ["web-vm"]
    client_from_config(config).close()


def test_a_job_cancelled_in_the_portal_is_logged_as_stopped_not_as_an_error(tmp_path, caplog):
    import logging

    from agent.errors import Cancelled

    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"server": "http://127.0.0.1:9", "credential": "acag_x.y"}))
    daemon = Daemon(Config.load(path))

    def cancelled(job):
        raise Cancelled("job 7 stopped: the job was cancelled in the portal")

    daemon._sources = cancelled
    with caplog.at_level(logging.INFO, logger="agent"):
        daemon.execute({"id": 7, "machine": {"id": 1}})
    records = [r for r in caplog.records if "job 7" in r.getMessage()]
    assert [r.levelname for r in records] == ["INFO"]
    assert records[0].getMessage() == "job 7 stopped: the job was cancelled in the portal"
    daemon.client.close()
