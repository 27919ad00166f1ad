"""The daemon against the real agent API: heartbeat, inventory, a queued job taken and run,
logs shipped as events, a clean stop."""

import threading

import pytest

from agent.daemon import Daemon
from agent.restore import restore_snapshot
from clouds.models import AgentEvent, AgentStatus
from clouds.services import agent_credential_revoke
from protection.models import JobState, JobTrigger, Machine, ReplicationJob
from protection.services.jobs import job_queue
from storage.models import Snapshot
from tests.e2e_support import wait_until

from .conftest import Harness, sha256_file, write_image

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_daemon_takes_a_queued_job_runs_it_and_ships_its_logs(live_server, customer, tmp_path):
    image = write_image(tmp_path / "disk.img", [("random", 1), ("zero", 0), ("text", 2)])
    h = Harness(customer, live_server.url, tmp_path)
    h.config.data["disks"] = [{"key": "data", "path": str(image)}]
    daemon = Daemon(h.config)
    runner = threading.Thread(target=lambda: setattr(daemon, "code", daemon.run()))
    runner.start()
    try:
        # The inventory reports the machine with the configured disk, unprotected.
        machine = wait_until(lambda: Machine.objects.for_customer(customer).first())
        assert machine.external_id == h.config.data["machine"]["external_id"]
        assert list(machine.disks.values_list("key", "size_bytes")) == [
            ("data", image.stat().st_size)
        ]
        wait_until(lambda: type(h.enrolled.agent).objects.for_customer(customer).get().status
                 == AgentStatus.ONLINE)  # fmt: skip
        h.protect({"data": str(image)})
        job = job_queue(
            customer, Machine.objects.for_customer(customer).get(), trigger=JobTrigger.MANUAL
        )

        def finished():
            row = ReplicationJob.objects.for_customer(customer).get(pk=job.pk)
            return row if row.state not in ("queued", "running", "committing") else None

        done = wait_until(finished)
        assert done.state == JobState.SUCCEEDED, done.error_message
        snapshot = Snapshot.objects.for_customer(customer).get()
        assert snapshot.job_id == job.pk and snapshot.disk_size == image.stat().st_size
        wait_until(
            lambda: (
                AgentEvent.objects.for_customer(customer)
                .filter(job=job, message__contains="succeeded")
                .exists()
            )
        )
        assert not AgentEvent.objects.for_customer(customer).filter(level="debug").exists()
    finally:
        daemon.stop("test over")
        runner.join(timeout=30)
    assert not runner.is_alive()
    assert daemon.code == 0
    assert (
        AgentEvent.objects.for_customer(customer).filter(message__contains="agent stopped").exists()
    )
    out = tmp_path / "restored.img"
    restore_snapshot(h.client, str(snapshot.pk), str(out))
    assert sha256_file(out) == sha256_file(image)
    h.client.close()


def test_a_revoked_credential_stops_the_daemon_with_exit_3(live_server, customer, tmp_path):
    h = Harness(customer, live_server.url, tmp_path)
    h.config.data["disks"] = {}
    agent_credential_revoke(h.enrolled.agent)
    daemon = Daemon(h.config)
    assert daemon.run() == 3
    h.client.close()
