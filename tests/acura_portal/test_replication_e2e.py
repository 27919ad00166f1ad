"""The product end to end, as a customer meets it: `manage.py serve` (web + worker + beat),
an agent enrolled with a token, its daemon reporting the host, *Start Protection* in the portal,
beat dispatching the first replication, *Replicate now* for the next one, restores of both
points bit-exact, and another customer's agent seeing none of it."""

import json
import sys
import urllib.error
import urllib.request

import pytest

from tests.agent.e2e_support import (
    AgentCli,
    MiB,
    Portal,
    make_image,
    overwrite,
    random_bytes,
    sha256_of,
)
from tests.e2e_support import (
    Browserless,
    Process,
    free_port,
    isolated_env,
    wait_http_ok,
    wait_until,
)

pytestmark = pytest.mark.e2e

LAYOUT = "rtzrrtzr" * 3  # 24 chunks of 1 MiB


def api_get(portal_url: str, credential: str, path: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        portal_url + path, headers={"Authorization": f"Bearer {credential}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def jobs(portal: Portal, slug: str) -> list:
    return portal.query(
        f"list(ReplicationJob.objects.for_customer(customer({slug!r})).order_by('id')"
        ".values_list('id', 'trigger', 'state', 'new_chunks', 'bytes_read', 'error_message'))"
    )


def test_enroll_protect_beat_dispatch_replicate_now_restore_and_isolation(tmp_path):
    with isolated_env(tmp_path) as env:
        env.update(
            ACURA_DISPATCH_SECONDS="2",
            ACURA_AGENT_HEARTBEAT_SECONDS="1",
            ACURA_STORE_FSYNC="0",
            ACURA_CHUNK_SIZE=str(MiB),  # LAYOUT counts 1 MiB chunks
        )
        port = free_port()
        server = Process(
            [sys.executable, "manage.py", "serve", "--port", str(port), "--web-workers", "1"],
            env,
        )
        daemon = None
        try:
            password = server.wait_for_output(r"password: (\S+)", timeout=180).group(1)
            base = f"http://127.0.0.1:{port}"
            wait_http_ok(base + "/healthz", timeout=60)
            portal = Portal(base, env, server)

            # Enroll with a token, start the daemon: it reports its host and disk.
            image = make_image(tmp_path / "disk.img", LAYOUT, seed=3)
            agent = AgentCli(
                tmp_path / "agent",
                disks=[{"key": "data", "path": str(image)}],
                poll_seconds=1,
                machine={"external_id": "e2e-host", "name": "e2e-host"},
            )
            enrolled = agent.enroll(portal, portal.token("demo"))
            assert enrolled.get("agent_id"), enrolled
            daemon = agent.spawn("run", "--config", agent.config)
            machine_id = wait_until(
                lambda: portal.query(
                    "list(Machine.objects.for_customer(customer('demo'))"
                    ".filter(external_id='e2e-host').values_list('id', flat=True))"
                ),
                60,
                "the daemon's inventory",
            )[0]

            # The customer sees it Unprotected and starts protection in the portal.
            browser = Browserless(base)
            status, _, _ = browser.login("admin", password)
            assert status == 200
            status, page, _ = browser.get(f"/c/demo/machines/{machine_id}/")
            assert status == 200 and "Unprotected" in page
            status, _, _ = browser.post_form(
                "/c/demo/machines/bulk/",
                {"machines": str(machine_id), "action": "start_protection"},
            )
            assert status == 200

            # Beat dispatches the first replication; the daemon takes and runs it.
            first = wait_until(
                lambda: [j for j in jobs(portal, "demo") if j[2] in ("succeeded", "failed")],
                90,
                "the scheduled job's end",
            )
            assert [(j[1], j[2]) for j in first] == [("schedule", "succeeded")], first
            nonzero = sum(1 for kind in LAYOUT if kind != "z")
            assert first[0][3] == nonzero  # every non-zero chunk was new
            status, page, _ = browser.get(f"/c/demo/machines/{machine_id}/")
            assert "In sync" in page
            sums = {}
            snapshot_ids = portal.query(
                "[str(s) for s in __import__('storage.models', fromlist=['x']).Snapshot.objects"
                ".for_customer(customer('demo')).order_by('created_at').values_list('id', "
                "flat=True)]"
            )
            sums[snapshot_ids[0]] = sha256_of(image)

            # Change two chunks; *Replicate now* sends only those.
            overwrite(image, 1 * MiB + 4096, random_bytes(64 * 1024, 11))
            overwrite(image, 17 * MiB, random_bytes(4096, 12))
            status, _, _ = browser.post_form(f"/c/demo/machines/{machine_id}/replicate/", {})
            assert status == 200
            second = wait_until(
                lambda: [
                    j
                    for j in jobs(portal, "demo")
                    if j[1] == "manual" and j[2] in ("succeeded", "failed")
                ],
                90,
                "the manual job's end",
            )
            assert second[0][2] == "succeeded", second
            assert second[0][3] == 2  # new chunks: the two changed ones
            assert second[0][4] == len(LAYOUT) * MiB  # no change list: every chunk hashed
            snapshot_ids = portal.query(
                "[str(s) for s in __import__('storage.models', fromlist=['x']).Snapshot.objects"
                ".for_customer(customer('demo')).order_by('created_at').values_list('id', "
                "flat=True)]"
            )
            assert len(snapshot_ids) == 2
            sums[snapshot_ids[1]] = sha256_of(image)

            # Both points in time restore bit-exact.
            for snapshot, expected in sums.items():
                out = tmp_path / f"restored-{snapshot}.img"
                agent.restore(snapshot, out)
                assert sha256_of(out) == expected

            # Another customer's agent can neither see nor touch any of it.
            portal.customer("globex")
            intruder = AgentCli(tmp_path / "intruder")
            intruder.enroll(portal, portal.token("globex"))
            credential = json.loads(intruder.config.read_text())["credential"]
            job_id = first[0][0]
            assert api_get(base, credential, f"/api/v1/agent/jobs/{job_id}/")[0] == 404
            status, listing = api_get(base, credential, "/api/v1/agent/snapshots/")
            assert status == 200 and listing["count"] == 0
            for snapshot in sums:
                path = f"/api/v1/agent/snapshots/{snapshot}/index/"
                assert api_get(base, credential, path)[0] == 404
            code, report, _ = intruder.run(
                "restore",
                "--config",
                intruder.config,
                "--snapshot",
                snapshot_ids[0],
                "--output",
                tmp_path / "stolen.img",
            )
            assert code != 0 and not (tmp_path / "stolen.img").exists(), report
        finally:
            if daemon is not None:
                daemon.stop()
                daemon.kill_group()
            server.stop()
            server.kill_group()
