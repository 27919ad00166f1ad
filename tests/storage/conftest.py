"""Fixtures of the storage tests: enrolled agents of both customers."""

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.storage_support import (  # noqa: F401  (re-exported for the tests' imports)
    CHUNK,
    Agent,
    batch,
    digest_of,
    make_disk,
    read_stream,
    split,
)


@pytest.fixture
def agent(customer):
    return Agent.enrolled(customer, hostname="test agent")


@pytest.fixture
def other_agent(other_customer):
    return Agent.enrolled(other_customer, hostname="other agent")


# -- moto S3 server: shared by the backend suite (store/) and the S3 protocol tests --

MOTO_SERVER = Path(sys.executable).parent / "moto_server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    """URL of a moto S3 server started for this test session (and stopped after it)."""
    if not MOTO_SERVER.exists():
        pytest.fail(
            f"moto[server] is not installed ({MOTO_SERVER} missing): "
            "run `.venv/bin/pip install -r requirements-dev.txt`",
            pytrace=False,
        )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if proc.poll() is not None:
                pytest.fail(
                    f"moto_server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(f"moto_server did not answer on {url} within 30 s", pytrace=False)
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
