"""A real portal (gunicorn, migrated, in its own data folder) and real agent processes."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.e2e_support import ROOT, Process, free_port, isolated_env, manage, wait_http_ok

MiB = 1 << 20


def sha256_of(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def random_bytes(size: int, seed: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def text_bytes(size: int, seed: int) -> bytes:
    line = f"{seed}: the agent replicates this log line, which compresses well\n".encode()
    return (line * (size // len(line) + 1))[:size]


def make_image(path: Path, layout: str, seed: int = 0) -> Path:
    """An image of 1 MiB chunks: ``layout`` has one letter per chunk — r(andom), t(ext),
    z(ero); equal letters at different places hold different data (seeded by position)."""
    with open(path, "wb") as f:
        for i, kind in enumerate(layout):
            if kind == "z":
                f.write(bytes(MiB))
            elif kind == "t":
                f.write(text_bytes(MiB, seed * 1000 + i))
            else:
                f.write(random_bytes(MiB, seed * 1000 + i))
    return path


def overwrite(path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@dataclass
class Portal:
    url: str
    env: dict
    server: Process

    def manage(self, *argv: str) -> str:
        done = manage(list(argv), self.env, timeout=180)
        if done.returncode:
            raise AssertionError(f"manage.py {argv[0]} failed:\n{done.stdout}\n{done.stderr}")
        lines = done.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def shell(self, code: str) -> str:
        """Run Python in ``manage.py shell``; returns the last printed line."""
        return self.manage("shell", "-v", "0", "-c", code)

    def query(self, code: str):
        """Evaluate an expression in the portal (``c`` is bound to the customer when the code
        uses it via ``customer('slug')``) and return its JSON value."""
        prelude = (
            "import json\n"
            "from tenants.models import Customer\n"
            "from protection.models import Machine, ReplicationJob\n"
            "from storage.models import Snapshot, UploadSession\n"
            "def customer(slug): return Customer.objects.get(slug=slug)\n"
        )
        return json.loads(self.shell(prelude + f"print(json.dumps({code}, default=str))"))

    def customer(self, slug: str) -> None:
        self.manage("create_customer", slug, "--name", f"Customer {slug}")

    def token(self, slug: str, *extra: str) -> str:
        return self.manage(
            "create_enrollment_token", "--customer", slug, "--platform", "linux", *extra
        )

    def protect(self, slug: str) -> str:
        return self.shell(
            "from tenants.models import Customer\n"
            "from protection.models import Machine\n"
            "from protection.services.machines import machines_start_protection\n"
            f"c = Customer.objects.get(slug={slug!r})\n"
            "print(machines_start_protection(c, Machine.objects.for_customer(c)))"
        )

    def bandwidth(self, slug: str, mbps: int) -> None:
        """The customer-level bandwidth limit (the effective setting of its machines)."""
        self.shell(
            "from tenants.models import Customer\n"
            "from protection.models import ReplicationPolicy\n"
            f"c = Customer.objects.get(slug={slug!r})\n"
            "ReplicationPolicy.objects.update_or_create(customer=c, group=None, machine=None, "
            f"defaults={{'bandwidth_limit_mbps': {mbps}}})"
        )


def start_portal(tmp: Path):
    """A context manager: migrate, gunicorn (2 workers x 4 threads), yield a Portal."""
    import contextlib

    @contextlib.contextmanager
    def running():
        with isolated_env(tmp) as env:
            env["LOG_LEVEL"] = "WARNING"
            env["ACURA_STORE_FSYNC"] = "0"  # the disk is not what these tests are about
            env["ACURA_CHUNK_SIZE"] = str(MiB)  # the layouts below count 1 MiB chunks
            done = manage(["migrate", "-v", "0"], env, timeout=600)
            assert done.returncode == 0, done.stderr[-3000:]
            port = free_port()
            argv = [
                sys.executable, "-m", "gunicorn", "acura_portal.wsgi:application",
                "--config", "python:acura_portal.gunicorn_conf",
                "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
            ]  # fmt: skip
            server = Process(argv, env)
            try:
                url = f"http://127.0.0.1:{port}"
                wait_http_ok(f"{url}/healthz", timeout=120)
                yield Portal(url, env, server)
            except BaseException:
                print(server.output[-3000:], file=sys.stderr)
                raise
            finally:
                server.stop()
                server.kill_group()

    return running()


class AgentCli:
    """``python -m agent`` with one config file (and its state folder beside it)."""

    def __init__(self, folder: Path, **config):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.config = folder / "agent.json"
        self.extra = config

    def run(self, *args, timeout: float = 300) -> tuple[int, dict, str]:
        done = subprocess.run(
            [sys.executable, "-m", "agent", *map(str, args)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        lines = [line for line in done.stdout.strip().splitlines() if line.startswith("{")]
        return done.returncode, (json.loads(lines[-1]) if lines else {}), done.stderr

    def enroll(self, portal: Portal, token: str) -> dict:
        code, report, stderr = self.run(
            "enroll", "--server", portal.url, "--token", token, "--config", self.config
        )
        assert code == 0, (report, stderr)
        if self.extra:
            data = json.loads(self.config.read_text())
            data.update(self.extra)
            self.config.write_text(json.dumps(data))
        return report

    def replicate(self, *disks, areas=None, timeout: float = 300) -> tuple[int, dict, str]:
        args = ["replicate", "--config", self.config]
        for disk in disks:
            args += ["--disk", disk]
        if areas is not None:
            args += ["--changed-areas", areas]
        return self.run(*args, timeout=timeout)

    def restore(self, snapshot: str, output) -> dict:
        code, report, stderr = self.run(
            "restore", "--config", self.config, "--snapshot", snapshot, "--output", output
        )
        assert code == 0, (report, stderr)
        return report

    def spawn(self, *args) -> Process:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return Process([sys.executable, "-m", "agent", *map(str, args)], env)


def new_chunks_seen(process: Process) -> int:
    """The highest "N new chunks" the agent's progress lines have shown."""
    found = [int(m.group(1)) for m in re.finditer(r"(\d+) new chunks", process.output)]
    return max(found, default=0)


def kill_hard(process: Process) -> None:
    os.killpg(process.proc.pid, signal.SIGKILL)
    process.proc.wait(timeout=30)
