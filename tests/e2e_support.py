"""Helpers for end-to-end tests that run real server / worker processes.

Each run gets its own data folder, its own broker queue, and — when the suite runs on
PostgreSQL — its own freshly created database, so e2e tests never touch the test database
of pytest-django or each other (the suite runs under pytest-xdist).
"""

import contextlib
import http.cookiejar
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wait_until(predicate, timeout: float = 30.0, what: str = "the condition", interval=0.2):
    """Poll ``predicate`` until it returns something truthy, and return that; fail the test
    naming ``what`` when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not reached within {timeout} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def isolated_env(tmp_path: Path):
    """Environment for a separate portal installation; yields the env dict."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY"}}
    env["ACURA_DATA_DIR"] = str(tmp_path / "data")
    env["ACURA_QUEUE"] = f"e2e-{secrets.token_hex(4)}"
    env["PYTHONUNBUFFERED"] = "1"
    database_url = os.environ.get("DATABASE_URL", "")
    dbname = None
    if database_url.startswith(("postgres://", "postgresql://")):
        import psycopg

        dbname = f"acura_e2e_{secrets.token_hex(4)}"
        parsed = urllib.parse.urlsplit(database_url)
        admin_url = parsed._replace(path="/postgres").geturl()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        env["DATABASE_URL"] = parsed._replace(path=f"/{dbname}").geturl()
    else:
        env.pop("DATABASE_URL", None)
    try:
        yield env
    finally:
        if dbname:
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


class Process:
    """A child process whose combined output is collected line by line in the background."""

    def __init__(self, argv, env, cwd=ROOT):
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_output(self, pattern: str, timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = regex.search(line)
                if match:
                    return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not seen in output:\n{self.output[-4000:]}")

    def stop(self, sig=signal.SIGINT, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode

    def kill_group(self):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def manage(args, env, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_http_ok(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {timeout}s (last error: {last})")


class Browserless:
    """A cookie-keeping HTTP client for form posts against a live server (no JavaScript)."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str, headers=None):
        request = urllib.request.Request(self.base_url + path, headers=headers or {})
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, response.read().decode(), response.geturl()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), exc.geturl()

    def post_form(self, path: str, data: dict):
        csrf = next((c.value for c in self.jar if c.name == "csrftoken"), "")
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf, **data}).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=body,
            headers={"Referer": self.base_url + path, "X-CSRFToken": csrf},
        )
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, response.read().decode(), response.geturl()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), exc.geturl()

    def login(self, username: str, password: str):
        self.get("/accounts/login/")
        return self.post_form("/accounts/login/", {"username": username, "password": password})
