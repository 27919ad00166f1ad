"""The agent CLI end to end: real ``python -m agent`` processes against a real portal
(gunicorn) — enroll, Start Protection, replicate, incremental, changed areas, restore
bit-exact, kill -9 and resume, a loop device, the daemon, and every failure's exit code."""

import json
import os
import signal
import subprocess

import pytest

from tests.e2e_support import free_port, wait_until

from .e2e_support import (
    AgentCli,
    MiB,
    kill_hard,
    make_image,
    new_chunks_seen,
    overwrite,
    random_bytes,
    sha256_of,
    start_portal,
)

pytestmark = pytest.mark.e2e

LAYOUT = "rrtzzrtrrzttrrzr" * 4  # 64 chunks of 1 MiB: random, text and zero runs
NONZERO = sum(1 for kind in LAYOUT if kind != "z")


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with start_portal(tmp_path_factory.mktemp("portal")) as running:
        yield running


def enrolled_agent(portal, slug, folder, **config) -> AgentCli:
    portal.customer(slug)
    agent = AgentCli(folder, **config)
    agent.enroll(portal, portal.token(slug))
    return agent


def first_contact(portal, agent, slug, *disks) -> None:
    """The first replicate reports the machine, which is not protected yet: refused
    clearly. Then Start Protection (as the portal's action does)."""
    code, report, _ = agent.replicate(*disks)
    assert code == 1, report
    assert "start protection in the portal first" in report["error"]
    assert portal.protect(slug) == "(1, 0)"


def test_replicate_incremental_changed_areas_and_restore_bit_exact(portal, tmp_path):
    agent = enrolled_agent(portal, "acme", tmp_path / "agent")
    image = make_image(tmp_path / "disk.img", LAYOUT, seed=1)
    first_contact(portal, agent, "acme", image)

    code, full, stderr = agent.replicate(image)
    assert code == 0, (full, stderr)
    assert full["state"] == "succeeded" and len(full["snapshots"]) == 1
    assert full["bytes_read"] == len(LAYOUT) * MiB
    assert full["new_chunks"] == full["chunks_sent"] == NONZERO  # zero chunks never sent
    assert "% of 64 MiB" in stderr  # human progress on stderr
    sums = {full["snapshots"][0]: sha256_of(image)}

    # 2 % of the image changes: five 256 KiB runs in five chunks (one of them was zero).
    changed = [1, 3, 20, 33, 50]
    for i, pos in enumerate(changed):
        overwrite(image, pos * MiB + 128 * 1024, random_bytes(256 * 1024, 100 + i))
    code, incr, stderr = agent.replicate(image)
    assert code == 0, (incr, stderr)
    assert incr["new_chunks"] == incr["chunks_sent"] == len(changed)
    assert incr["bytes_read"] == len(LAYOUT) * MiB  # no change list: every chunk hashed
    assert incr["disks"][0]["delta"] is True and incr["disks"][0]["changed_chunks"] == 5
    # On the wire: the five changed chunks (1 MiB each, random) and a few small requests.
    assert 5 * 256 * 1024 < incr["bytes_sent"] < 5 * MiB + 64 * 1024
    sums[incr["snapshots"][0]] = sha256_of(image)

    # With a changed-areas list (as CBT gives it) only the listed chunks are read.
    overwrite(image, 40 * MiB + 10, b"changed by CBT")
    overwrite(image, 62 * MiB, random_bytes(3 * 1024, 7))
    areas = tmp_path / "areas.json"
    areas.write_text(
        json.dumps([{"start": 40 * MiB, "length": 4096}, {"start": 62 * MiB, "length": 3072}])
    )
    code, listed, stderr = agent.replicate(image, areas=areas)
    assert code == 0, (listed, stderr)
    assert listed["bytes_read"] == 2 * MiB
    assert listed["chunks_sent"] == 2
    sums[listed["snapshots"][0]] = sha256_of(image)

    for snapshot, expected in sums.items():
        out = tmp_path / f"restored-{snapshot}.img"
        report = agent.restore(snapshot, out)
        assert sha256_of(out) == expected, snapshot
        assert report["disk_size"] == len(LAYOUT) * MiB

    code, listing, _ = agent.run("snapshots", "--config", agent.config)
    assert code == 0 and {s["id"] for s in listing["snapshots"]} == set(sums)
    states = portal.query(
        "list(ReplicationJob.objects.for_customer(customer('acme')).values_list('state', "
        "'trigger', 'new_chunks'))"
    )
    assert sorted(states) == sorted(
        [["succeeded", "agent", NONZERO], ["succeeded", "agent", 5], ["succeeded", "agent", 2]]
    )


def test_a_loop_device_is_replicated_as_a_block_device(portal, tmp_path):
    backing = make_image(tmp_path / "backing.img", "rtzrrztr", seed=2)
    attached = subprocess.run(
        ["losetup", "-f", "--show", str(backing)], capture_output=True, text=True
    )
    if attached.returncode:
        pytest.fail(
            f"this test reads a real block device: it needs root and loop devices "
            f"(losetup said: {attached.stderr.strip()})"
        )
    device = attached.stdout.strip()
    try:
        agent = enrolled_agent(portal, "loopco", tmp_path / "agent")
        first_contact(portal, agent, "loopco", device)
        code, full, stderr = agent.replicate(device)
        assert code == 0, (full, stderr)
        assert full["disks"][0]["key"] == os.path.basename(device)
        assert full["new_chunks"] == 6
        keys = portal.query(
            "list(Machine.objects.for_customer(customer('loopco')).get().disks"
            ".values_list('key', 'size_bytes'))"
        )
        assert keys == [[os.path.basename(device), 8 * MiB]]

        overwrite(device, 2 * MiB + 4096, b"written through the device")  # the zero chunk
        code, incr, stderr = agent.replicate(device)
        assert code == 0, (incr, stderr)
        assert incr["chunks_sent"] == 1 and incr["new_chunks"] == 1

        out = tmp_path / "restored.img"
        agent.restore(incr["snapshots"][0], out)
        assert sha256_of(out) == sha256_of(device)
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


def test_kill_9_mid_upload_then_rerun_sends_only_the_missing_chunks(portal, tmp_path):
    agent = enrolled_agent(portal, "crashco", tmp_path / "agent")
    image = make_image(tmp_path / "disk.img", "r" * 24, seed=3)
    first_contact(portal, agent, "crashco", image)
    portal.bandwidth("crashco", 8)  # 1 MB/s: the 24 MiB upload takes ~25 s

    running = agent.spawn("replicate", "--config", agent.config, "--disk", image)
    try:
        wait_until(lambda: new_chunks_seen(running) >= 3, 90, "3 chunks uploaded")
    finally:
        kill_hard(running)
    state = portal.query(
        "[(j.id, j.state) for j in ReplicationJob.objects.for_customer(customer('crashco'))]"
        " + [[s.chunks_uploaded, s.state] for s in "
        "UploadSession.objects.for_customer(customer('crashco'))]"
        " + [Snapshot.objects.for_customer(customer('crashco')).count()]"
    )
    (job_id, job_state), (stored, session_state), snapshots = state
    assert job_state == "running" and session_state == "open" and snapshots == 0
    assert 3 <= stored < 24

    portal.bandwidth("crashco", 0)
    code, report, stderr = agent.replicate(image)
    assert code == 0, (report, stderr)
    assert report["resumed"] is True and report["job"] == job_id
    assert report["disks"][0]["resumed_session"] is True
    assert report["chunks_sent"] == report["new_chunks"] == 24 - stored
    out = tmp_path / "restored.img"
    agent.restore(report["snapshots"][0], out)
    assert sha256_of(out) == sha256_of(image)


def test_bad_tokens_and_revoked_credentials_exit_3_with_a_clear_message(portal, tmp_path):
    portal.customer("authco")

    def enroll(token, name):
        agent = AgentCli(tmp_path / name)
        code, report, _ = agent.run(
            "enroll", "--server", portal.url, "--token", token, "--config", agent.config
        )
        return agent, code, report

    agent, code, report = enroll("acet_000000000000.not-a-real-secret", "wrong")
    assert code == 3 and report["error"].startswith("enrollment token rejected: ")
    assert not agent.config.exists()

    expired = portal.token("authco")
    prefix = expired.split("_", 1)[1].split(".", 1)[0]
    portal.shell(
        "from datetime import timedelta\nfrom django.utils import timezone\n"
        "from clouds.models import EnrollmentToken\n"
        f"EnrollmentToken.objects.all_customers().filter(prefix={prefix!r})"
        ".update(expires_at=timezone.now() - timedelta(hours=1))"
    )
    _, code, report = enroll(expired, "expired")
    assert code == 3 and "expired" in report["error"], report

    revoked = portal.token("authco")
    portal.manage("revoke_enrollment_token", revoked)
    _, code, report = enroll(revoked, "revoked")
    assert code == 3 and "revoked" in report["error"], report

    once = portal.token("authco")
    agent, code, report = enroll(once, "first")
    assert code == 0, report
    _, code, report = enroll(once, "second")
    assert code == 3 and "used up" in report["error"], report

    image = make_image(tmp_path / "disk.img", "rr", seed=4)
    first_contact(portal, agent, "authco", image)
    agent_id = json.loads(agent.config.read_text())["agent_id"]
    portal.manage("revoke_agent_credential", "--customer", "authco", str(agent_id))
    code, report, _ = agent.replicate(image)
    assert code == 3
    assert report["error"].startswith("credential rejected: ") and "revoked" in report["error"]
    assert portal.query("Snapshot.objects.for_customer(customer('authco')).count()") == 0


def test_an_unreachable_server_exits_4(portal, tmp_path):
    agent = enrolled_agent(portal, "netco", tmp_path / "agent", retries=1)
    image = make_image(tmp_path / "disk.img", "r", seed=5)
    data = json.loads(agent.config.read_text())
    data["server"] = f"http://127.0.0.1:{free_port()}"
    agent.config.write_text(json.dumps(data))
    code, report, _ = agent.replicate(image)
    assert code == 4
    assert report["error"].startswith(f"cannot reach server {data['server']}: Connection refused")


def test_an_unreadable_disk_exits_5_and_commits_nothing(portal, tmp_path):
    agent = enrolled_agent(portal, "diskco", tmp_path / "agent")
    image = make_image(tmp_path / "disk.img", "r" * 64, seed=6)
    first_contact(portal, agent, "diskco", image)

    code, report, _ = agent.replicate(tmp_path / "no-such-disk.img")
    assert code == 5 and "cannot open disk" in report["error"]
    assert portal.query("ReplicationJob.objects.for_customer(customer('diskco')).count()") == 0

    # The disk fails while it is being read (here: it shrinks under the agent, which reads
    # ahead of the throttled upload by at most ~30 MiB).
    portal.bandwidth("diskco", 8)
    running = agent.spawn("replicate", "--config", agent.config, "--disk", image)
    wait_until(lambda: new_chunks_seen(running) >= 1, 60, "the first upload")
    with open(image, "r+b") as f:
        f.truncate(MiB)
    assert running.proc.wait(timeout=120) == 5, running.output[-3000:]
    assert "ended at byte" in running.output
    job = portal.query(
        "list(ReplicationJob.objects.for_customer(customer('diskco'))"
        ".values_list('state', 'error_message'))"
    )
    assert job[0][0] == "failed" and "ended at byte" in job[0][1]
    sessions = portal.query(
        "list(UploadSession.objects.for_customer(customer('diskco'))"
        ".values_list('state', flat=True))"
    )
    assert sessions == ["aborted"]
    assert portal.query("Snapshot.objects.for_customer(customer('diskco')).count()") == 0


def test_the_daemon_takes_a_queued_job_and_stops_cleanly(portal, tmp_path):
    image = make_image(tmp_path / "disk.img", "rtzr", seed=7)
    agent = enrolled_agent(
        portal,
        "daemonco",
        tmp_path / "agent",
        disks=[{"key": "data", "path": str(image)}],
        poll_seconds=1,
    )
    daemon = agent.spawn("run", "--config", agent.config)
    try:
        wait_until(
            lambda: portal.query("Machine.objects.for_customer(customer('daemonco')).count()"),
            60,
            "the daemon's inventory",
        )
        assert portal.protect("daemonco") == "(1, 0)"
        portal.shell(
            "from tenants.models import Customer\nfrom protection.models import Machine\n"
            "from protection.services.jobs import job_queue\n"
            "c = Customer.objects.get(slug='daemonco')\n"
            "job_queue(c, Machine.objects.for_customer(c).get(), trigger='manual')"
        )
        wait_until(
            lambda: (
                portal.query(
                    "list(ReplicationJob.objects.for_customer(customer('daemonco'))"
                    ".values_list('state', flat=True))"
                )
                == ["succeeded"]
            ),
            90,
            "the job's success",
        )
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=60)
        daemon.kill_group()
    assert code == 0, daemon.output[-3000:]
    assert "agent stopped" in daemon.output
    snapshot = portal.query("str(Snapshot.objects.for_customer(customer('daemonco')).get().pk)")
    out = tmp_path / "restored.img"
    agent.restore(snapshot, out)
    assert sha256_of(out) == sha256_of(image)
    events = portal.query(
        "list(__import__('clouds.models', fromlist=['AgentEvent']).AgentEvent.objects"
        ".for_customer(customer('daemonco')).values_list('message', flat=True))"
    )
    assert any("succeeded" in message for message in events), events
