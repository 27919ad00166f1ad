"""The CLI as a process: exit codes, one JSON object as the last stdout line, and bad input
refused before anything reaches the server."""

import json
import os
import stat
import subprocess
import sys

import pytest

from clouds.services import agent_credential_revoke, enrollment_token_create
from tests.e2e_support import ROOT, free_port

from .conftest import Harness, write_image
from .http_support import ScriptedServer


def run_agent(*args, timeout=60):
    done = subprocess.run(
        [sys.executable, "-m", "agent", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
    return done.returncode, json.loads(last), done.stderr


def config_file(tmp_path, **values):
    data = {"server": "http://127.0.0.1:9", "credential": "acag_abc.def", "retries": 0}
    data.update(values)
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(data))
    return path


def test_bad_arguments_exit_2_with_a_json_error():
    code, report, stderr = run_agent("replicate", "--config", "x.json")
    assert code == 2
    assert "--disk" in report["error"] and report["exit_code"] == 2
    assert "error:" in stderr


def test_a_missing_config_says_to_enroll(tmp_path):
    code, report, _ = run_agent("replicate", "--config", tmp_path / "no.json", "--disk", "x")
    assert code == 2 and "run `enroll` first" in report["error"]


def test_a_bad_fingerprint_in_the_config_is_a_usage_error(tmp_path):
    path = config_file(tmp_path, server_fingerprint="not-hex")
    code, report, _ = run_agent("snapshots", "--config", path)
    assert code == 2 and "server_fingerprint" in report["error"]


def test_bad_changed_areas_and_unreadable_disks_stop_before_the_server(tmp_path):
    image = write_image(tmp_path / "disk.img", [("random", 1), ("zero", 0)])
    areas = tmp_path / "areas.json"
    with ScriptedServer([(500, {"error": {"status": 500, "message": "must not be called"}})]) as s:
        path = config_file(tmp_path, server=s.url)
        areas.write_text(json.dumps([{"start": -5, "length": 10}]))
        code, report, _ = run_agent(
            "replicate", "--config", path, "--disk", image, "--changed-areas", areas
        )
        assert code == 2 and "must not be negative" in report["error"]
        areas.write_text(json.dumps([{"start": 0, "length": 10**9}]))
        code, report, _ = run_agent(
            "replicate", "--config", path, "--disk", image, "--changed-areas", areas
        )
        assert code == 2 and "reaches past its end" in report["error"]
        code, report, _ = run_agent(
            "replicate", "--config", path, "--disk", tmp_path / "missing.img"
        )
        assert code == 5
        assert report["error"] == (
            f"cannot open disk {tmp_path / 'missing.img'}: No such file or directory"
        )
        code, report, _ = run_agent("replicate", "--config", path, "--disk", tmp_path)
        assert code == 5 and "neither an image file nor a block device" in report["error"]
        assert s.requests == []


def test_an_unreachable_server_exits_4(tmp_path):
    image = write_image(tmp_path / "disk.img", [("random", 1)])
    port = free_port()
    path = config_file(tmp_path, server=f"http://127.0.0.1:{port}", retries=1)
    code, report, _ = run_agent("replicate", "--config", path, "--disk", image)
    assert code == 4
    assert report["error"].startswith(f"cannot reach server http://127.0.0.1:{port}: ")
    assert "Connection refused" in report["error"]


@pytest.mark.django_db(transaction=True)
def test_enroll_from_a_package_config_then_refuse_a_second_enroll(live_server, customer, tmp_path):
    token = enrollment_token_create(customer, platform="linux", max_uses=2).text
    path = tmp_path / "agent.json"
    path.write_text(
        json.dumps(
            {
                "server": live_server.url,
                "enrollment_token": token,
                "server_fingerprint": None,
                "platform": "linux",
            }
        )
    )
    code, report, _ = run_agent("enroll", "--config", path)
    assert code == 0, report
    assert report["customer"] == {"id": customer.pk, "slug": customer.slug}
    written = json.loads(path.read_text())
    assert written["credential"].startswith("acag_") and "enrollment_token" not in written
    assert written["machine"]["external_id"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    code, report, _ = run_agent("enroll", "--config", path, "--token", token)
    assert code == 2 and "--force" in report["error"]


@pytest.mark.django_db(transaction=True)
def test_a_wrong_token_exits_3_with_the_servers_reason(live_server, customer, tmp_path):
    path = tmp_path / "agent.json"
    code, report, _ = run_agent(
        "enroll", "--server", live_server.url, "--token", "acet_nope.nope", "--config", path
    )
    assert code == 3
    assert report["error"].startswith("enrollment token rejected: ")
    assert not path.exists()


@pytest.mark.django_db(transaction=True)
def test_a_revoked_credential_exits_3_and_nothing_is_replicated(live_server, customer, tmp_path):
    h = Harness(customer, live_server.url, tmp_path)
    image = write_image(tmp_path / "disk.img", [("random", 1)])
    h.protect({"disk.img": str(image)})
    agent_credential_revoke(h.enrolled.agent)
    code, report, _ = run_agent("replicate", "--config", h.config_path, "--disk", image)
    assert code == 3
    assert report["error"] == (
        "credential rejected: This agent credential was revoked; enroll the agent again."
    )
    h.client.close()
