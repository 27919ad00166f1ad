"""The appliance end-to-end tests' shared steps, with real processes: `manage.py serve`, an
appliance archive fetched from its download link, unpacked and started with its own start
script, the portal's jobs of a customer, and another customer's appliance that must see none
of it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.acura_portal.test_replication_e2e import api_get
from tests.agent.e2e_support import AgentCli, Portal
from tests.e2e_support import Process, free_port, wait_http_ok


@contextlib.contextmanager
def serving(env: dict, watch=()):
    """``manage.py serve`` (web, worker, beat) on a free port; yields ``(portal, password)``.
    On a failure the server's output and that of each process in ``watch`` (a list the test
    fills) are printed."""
    port = free_port()
    server = Process(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--web-workers", "1"], env
    )
    try:
        password = server.wait_for_output(r"password: (\S+)", timeout=180).group(1)
        base = f"http://127.0.0.1:{port}"
        assert f"Log in at {base}/" in server.output  # the banner names the port it serves
        wait_http_ok(base + "/healthz", timeout=60)
        yield Portal(base, env, server), password
    except BaseException:
        print(server.output[-4000:], file=sys.stderr)
        for process in watch:
            print(process.output[-4000:], file=sys.stderr)
        raise
    finally:
        for process in watch:
            process.stop()
            process.kill_group()
        server.stop()
        server.kill_group()


def start_appliance(url: str, folder: Path, **config) -> tuple[Process, Path, dict]:
    """Fetch the appliance archive from ``url`` (curl), unpack it, put ``config`` into its
    agent config and start it with its own start script; ``(daemon, config path, config)``."""
    archive = folder / "appliance.tar.gz"
    subprocess.run(["curl", "-sS", "-f", "-o", str(archive), url], check=True, timeout=60)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "appliance", filter="data")
    (top,) = (folder / "appliance").iterdir()
    files = top / "files"
    path = files / "etc/hvragent/agent.json"
    data = json.loads(path.read_text())
    packaged = dict(data)
    data.update(config)
    path.write_text(json.dumps(data))
    env = {
        **os.environ,
        "ACURA_AGENT_PYTHON": sys.executable,
        "ACURA_AGENT_HOME": str(files / "opt/hvragent"),
        "ACURA_AGENT": str(files / "usr/bin/acura-agent"),
    }
    daemon = Process(["sh", str(files / "opt/hvragent/bin/hvragent-start"), str(path)], env)
    return daemon, path, packaged


def snapshots_restore_bit_exact(config_path: Path, folder: Path, points: list[bytes]) -> list:
    """``python -m agent snapshots`` with the appliance's config lists one snapshot per
    point, oldest first, and ``python -m agent restore`` gives each back bit-exact; returns
    the listing."""
    cli = AgentCli(folder / "cli")
    code, listing, stderr = cli.run("snapshots", "--config", config_path)
    assert code == 0, stderr
    snaps = sorted(listing["snapshots"], key=lambda s: s["created_at"])
    assert len(snaps) == len(points)
    for snap, expected in zip(snaps, points, strict=True):
        out = folder / f"{snap['id']}.raw"
        code, _, stderr = cli.run(
            "restore", "--config", config_path, "--snapshot", snap["id"], "--output", out
        )
        assert code == 0, stderr
        assert out.read_bytes() == expected
    return snaps


def jobs(portal: Portal, slug: str = "demo") -> list:
    return portal.query(
        f"list(ReplicationJob.objects.for_customer(customer({slug!r})).order_by('id')"
        ".values_list('id', 'trigger', 'state', 'bytes_read', 'error_message', 'warnings'))"
    )


def finished(portal: Portal, trigger: str):
    """The customer's jobs of ``trigger`` that ended, or None (for ``wait_until``)."""
    done = [j for j in jobs(portal) if j[1] == trigger and j[2] in ("succeeded", "failed")]
    return done or None


def other_customers_appliance_sees_nothing(portal: Portal, folder: Path, platform: str,
                                           job_id: int, snapshot_id: str) -> None:  # fmt: skip
    """A second customer's appliance (its own cloud) gets 404 for the first customer's job
    and snapshot, and an empty snapshot list."""
    portal.customer("globex")
    token = portal.shell(
        "from tenants.models import Customer\n"
        "from clouds.services.clouds import cloud_create\n"
        "from clouds.services import enrollment_token_create\n"
        "g = Customer.objects.get(slug='globex')\n"
        f"c = cloud_create(g, platform='{platform}', name='theirs', endpoint='vc.invalid',"
        " login='x', password='y', check=False)\n"
        f"print(enrollment_token_create(g, platform='{platform}', cloud=c).text)"
    )
    intruder = AgentCli(folder / "intruder")
    intruder.config.write_text(json.dumps({"platform": platform, "role": "appliance"}))
    intruder.enroll(portal, token)
    credential = json.loads(intruder.config.read_text())["credential"]
    assert api_get(portal.url, credential, f"/api/v1/agent/jobs/{job_id}/")[0] == 404
    status, listing = api_get(portal.url, credential, "/api/v1/agent/snapshots/")
    assert status == 200 and listing["count"] == 0
    assert api_get(portal.url, credential, "/api/v1/agent/cloud/")[1]["name"] == "theirs"
    path = f"/api/v1/agent/snapshots/{snapshot_id}/"
    assert api_get(portal.url, credential, path)[0] == 404
