"""The inventory the CLI sends before a job goes out only when the host reports something new:
against the real agent API (the live server)."""

import json
import signal

import pytest

from agent import cli, inventory
from protection.models import Disk, ReplicationJob

from .conftest import write_image

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_same_report_is_sent_once_and_a_change_is_reported(harness, tmp_path):
    image = write_image(tmp_path / "a.img", [("random", 1), ("zero", 0)])
    disks = {"disk-a": str(image)}
    machine, cached = inventory.report_cached(harness.client, harness.config, disks)
    assert not cached and isinstance(machine["id"], int)
    sent = harness.client.sent

    again, cached = inventory.report_cached(harness.client, harness.config, disks)
    assert cached and again == machine
    assert harness.client.sent == sent  # nothing crossed the wire

    # A new disk is a different report: it goes out, and the server knows the disk.
    other = write_image(tmp_path / "b.img", [("random", 2)])
    changed, cached = inventory.report_cached(
        harness.client, harness.config, {**disks, "disk-b": str(other)}
    )
    assert not cached and changed["id"] == machine["id"]
    assert harness.client.sent > sent
    keys = set(Disk.objects.for_customer(harness.customer).values_list("key", flat=True))
    assert keys == {"disk-a", "disk-b"}

    # Forgotten (what the CLI does when the server no longer knows the machine): sent again.
    inventory.forget_report(harness.config)
    sent = harness.client.sent
    _, cached = inventory.report_cached(harness.client, harness.config, disks)
    assert not cached and harness.client.sent > sent


def test_replicate_reports_again_when_the_cached_machine_is_gone(harness, tmp_path, capsys):
    """A cached answer naming a machine the server no longer has (deleted, or moved to
    another agent) costs one 404 on jobs/, then the CLI reports afresh and replicates."""
    image = write_image(tmp_path / "a.img", [("random", 1), ("text", 2)])
    disks = {"disk-a": str(image)}
    machine_id = harness.protect(disks)
    inventory.report_cached(harness.client, harness.config, disks)
    cache = harness.config.state_dir / inventory.CACHE_FILE
    data = json.loads(cache.read_text())
    data["machine"]["id"] = machine_id + 10_000  # the server has no such machine
    cache.write_text(json.dumps(data))

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = cli.main(["replicate", "--config", str(harness.config_path), "--disk", str(image)])
    finally:
        for sig, handler in handlers.items():  # the CLI installs its own
            signal.signal(sig, handler)
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, report
    assert report["state"] == "succeeded" and report["machine"] == machine_id
    assert json.loads(cache.read_text())["machine"]["id"] == machine_id
    jobs = ReplicationJob.objects.for_customer(harness.customer).filter(machine_id=machine_id)
    assert [j.state for j in jobs] == ["succeeded"]
