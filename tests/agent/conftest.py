"""Fixtures of the agent tests: the real agent API served by pytest-django's live server,
an enrolled agent with a config file, and disk images."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from agent import inventory
from agent.config import Config
from agent.http import client_from_config
from clouds.services import agent_enroll, enrollment_token_create
from protection.models import Machine
from protection.services.machines import machines_start_protection

CS = 64 * 1024  # tests/conftest.py sets STORE_CHUNK_SIZE to this


def sha256_file(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def chunk(kind: str, seed: int = 0, size: int = CS) -> bytes:
    """Chunk contents: "zero", "random" (seeded), or "text" (compressible)."""
    if kind == "zero":
        return bytes(size)
    if kind == "text":
        line = f"line {seed} of a log file with some words in it\n".encode()
        return (line * (size // len(line) + 1))[:size]
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}-{counter}".encode()).digest()
        counter += 1
    return out[:size]


def write_image(path: Path, kinds: list[tuple[str, int]], tail: int = 0) -> Path:
    """An image of one chunk per ``(kind, seed)``, plus ``tail`` random bytes (a short last
    chunk)."""
    with open(path, "wb") as f:
        for kind, seed in kinds:
            f.write(chunk(kind, seed))
        if tail:
            f.write(chunk("random", 999_999, tail))
    return path


def overwrite(path: Path, position: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(position * CS)
        f.write(data)


class Harness:
    """An enrolled agent of ``customer`` talking to ``url``: its config file, state folder,
    client, and (after :meth:`protect`) its protected machine."""

    def __init__(self, customer, url: str, folder: Path, group=None):
        self.customer = customer
        self.folder = folder
        token = enrollment_token_create(customer, platform="linux", group=group)
        self.enrolled = agent_enroll(token.text, hostname="test-host", version="test")
        self.config_path = folder / "agent.json"
        data = {
            "server": url,
            "credential": self.enrolled.text,
            "agent_id": self.enrolled.agent.pk,
            "machine": {"external_id": f"machine-{os.urandom(4).hex()}", "name": "test-host"},
            "retries": 1,
            "threads": 2,
            "poll_seconds": 1,
            "heartbeat_seconds": 1,
        }
        self.config_path.write_text(json.dumps(data))
        self.config = Config.load(self.config_path)
        self.client = client_from_config(self.config)
        self.machine_id = None

    def protect(self, disks: dict[str, str]) -> int:
        """Report the machine with ``disks`` (key → path) and start its protection."""
        entry = inventory.report(self.client, self.config, disks)
        machines_start_protection(
            self.customer, Machine.objects.for_customer(self.customer).filter(pk=entry["id"])
        )
        self.machine_id = entry["id"]
        return entry["id"]


@pytest.fixture
def harness(live_server, customer, tmp_path):
    h = Harness(customer, live_server.url, tmp_path)
    yield h
    h.client.close()
