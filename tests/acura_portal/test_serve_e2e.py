"""The quick start's process tree, for real: `manage.py serve` runs web + worker + beat."""

import os
import re
import sys
import time
from pathlib import Path

import pytest

from tests.e2e_support import Browserless, Process, free_port, isolated_env, manage, wait_http_ok

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_serve_runs_web_worker_and_beat_and_stops_them_all(tmp_path):
    with isolated_env(tmp_path) as env:
        port = free_port()
        server = Process(
            [sys.executable, "manage.py", "serve", "--port", str(port), "--web-workers", "1"],
            env,
        )
        try:
            password = server.wait_for_output(r"password: (\S+)", timeout=120).group(1)
            pids = server.wait_for_output(
                r"web pid (\d+), worker pid (\d+), beat pid (\d+)", timeout=30
            ).groups()
            base = f"http://127.0.0.1:{port}"
            wait_http_ok(base + "/healthz", timeout=60)

            # The web process: login as the demo admin and see the demo dashboard.
            browser = Browserless(base)
            status, body, url = browser.login("admin", password)
            assert status == 200, body[:500]
            assert url.endswith("/c/demo/")
            assert "Demo Customer" in body

            # Request ids reach the logs.
            browser.get("/healthz", headers={"X-Request-ID": "e2e-req-42"})
            server.wait_for_output(r"\[e2e-req-42\] acura.request: GET /healthz 200", timeout=10)
            # Every process logs in the one format: time, level, pid, [request id], logger.
            prefix = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \d+ \[[^\]]+\] "
            for logger in ("gunicorn.error", "celery.apps.worker", "celery.beat"):
                server.wait_for_output(prefix + re.escape(logger) + ": ", timeout=30)

            # The worker consumes the broker queue.
            marker = tmp_path / "worker-did-it"
            sent = manage(
                [
                    "shell",
                    "-v",
                    "0",
                    "-c",
                    f"from acura_portal.tasks import touch_file; touch_file.delay({str(marker)!r})",
                ],
                env,
            )
            assert sent.returncode == 0, sent.stderr
            deadline = time.monotonic() + 60
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert marker.exists(), server.output[-3000:]

            # Beat runs on the database scheduler, which holds the portal's periodic tasks.
            server.wait_for_output(r"beat: Starting", timeout=30)
            listed = manage(
                [
                    "shell",
                    "-v",
                    "0",
                    "-c",
                    "from django_celery_beat.models import PeriodicTask; "
                    "print(sorted(PeriodicTask.objects.values_list('name', flat=True)))",
                ],
                env,
            )
            assert "Housekeeping: clear expired sessions" in listed.stdout, listed.stderr
        finally:
            code = server.stop()
            server.kill_group()
        assert code == 0, server.output[-3000:]
        assert "Stopped web, worker and beat." in server.output
        assert not any(_alive(int(pid)) for pid in pids)

        # A second start keeps the demo customer and does not print a password again.
        again = Process([sys.executable, "manage.py", "serve", "--port", str(free_port())], env)
        try:
            again.wait_for_output(r"Demo customer 'demo' exists", timeout=120)
        finally:
            again.stop()
            again.kill_group()
        assert "password:" not in again.output


def test_serve_stops_everything_when_one_process_dies(tmp_path):
    with isolated_env(tmp_path) as env:
        server = Process(
            [sys.executable, "manage.py", "serve", "--port", str(free_port()), "--no-demo"], env
        )
        try:
            worker_pid = int(server.wait_for_output(r"worker pid (\d+)", timeout=120).group(1))
            web_pid = int(server.wait_for_output(r"web pid (\d+)", timeout=5).group(1))
            time.sleep(2)
            os.kill(worker_pid, 9)
            server.proc.wait(timeout=40)
        finally:
            server.stop()
            server.kill_group()
        assert server.proc.returncode == 1
        assert "The worker process exited" in server.output
        assert not _alive(web_pid)
