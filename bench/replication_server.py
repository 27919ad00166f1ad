"""The portal for bench/replication.py: gunicorn alone (no worker, no beat: nothing but the
agent API is needed, and beat's dispatcher would queue jobs of its own) in its own data folder,
on a throwaway PostgreSQL database when 127.0.0.1:5432 answers, else SQLite. Customers,
enrollment tokens and protection come from the management commands, as an operator would do.
"""

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.store import tree_cpu
from tests.e2e_support import ROOT, Process, free_port, isolated_env, manage, wait_http_ok

REQUEST_LINE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) /api/v1/agent/(\S+) \d{3} ([\d.]+)ms")
ID_IN_PATH = re.compile(r"/(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/")
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"

PROTECT = """
from protection.models import Machine
from protection.services.machines import machines_start_protection
from tenants.models import Customer
customer = Customer.objects.get(slug={slug!r})
print(machines_start_protection(customer, Machine.objects.for_customer(customer)))
"""

# What the server recorded for each snapshot: the upload session's received chunk bytes and
# the job's counters (as the agent reported them).
FIGURES = """
import json
from storage.models import UploadSession
rows = {{}}
sessions = UploadSession.objects.all_customers().filter(snapshot_id__in={ids!r})
for s in sessions.select_related("job", "snapshot"):
    rows[str(s.snapshot_id)] = {{
        "bytes_received": s.bytes_received,
        "chunks_uploaded": s.chunks_uploaded,
        "stored_bytes_added": s.stored_bytes_added,
        "new_chunks": s.snapshot.new_chunks,
        "job_bytes_sent": s.job.bytes_sent if s.job else None,
        "job_bytes_read": s.job.bytes_read if s.job else None,
    }}
print(json.dumps(rows))
"""


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
        import psycopg

        with psycopg.connect(LOCAL_POSTGRES, connect_timeout=3):
            return True
    except Exception:  # OSError, ImportError, psycopg.Error (no role, a password needed)
        return False


def choose_database() -> str:
    """DATABASE_URL as given; else the local PostgreSQL when it answers; else SQLite. (On
    PostgreSQL, tests.e2e_support.isolated_env creates a throwaway database and drops it.)"""
    if not os.environ.get("DATABASE_URL") and postgres_reachable():
        os.environ["DATABASE_URL"] = LOCAL_POSTGRES
    url = os.environ.get("DATABASE_URL", "")
    return "PostgreSQL" if url.startswith(("postgres://", "postgresql://")) else "SQLite"


def _last_line(done: subprocess.CompletedProcess, what: str) -> str:
    if done.returncode:
        raise RuntimeError(f"{what} exited {done.returncode}:\n{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{what} printed nothing:\n{done.stderr[-3000:]}")
    return lines[-1]


@dataclass
class Portal:
    url: str
    env: dict
    pid: int  # gunicorn's master: tree_cpu(pid) counts its workers too
    database: str
    process: Process  # its output: the portal logs one line per request, with its duration

    def manage(self, *argv: str) -> str:
        """Run a management command against this portal; returns its last output line."""
        return _last_line(manage(list(argv), self.env), f"manage.py {argv[0]}")

    def customer(self, slug: str) -> None:
        self.manage("create_customer", slug, "--name", f"Bench {slug}")

    def enrollment_token(self, slug: str) -> str:
        return self.manage("create_enrollment_token", "--customer", slug, "--platform", "linux")

    def start_protection(self, slug: str) -> str:
        return self.manage("shell", "-v", "0", "-c", PROTECT.format(slug=slug))

    def figures(self, snapshot_ids: list[str]) -> dict:
        line = self.manage("shell", "-v", "0", "-c", FIGURES.format(ids=list(snapshot_ids)))
        return json.loads(line)

    def cpu(self) -> float:
        return tree_cpu(self.pid)

    def request_times(self, since: int) -> dict[str, list]:
        """Server-side durations of the agent API requests logged after line ``since``:
        {"METHOD path": [count, seconds]} (path relative to /api/v1/agent/, ids as {id})."""
        stats: dict[str, list] = {}
        for line in self.process.lines[since:]:
            found = REQUEST_LINE.search(line)
            if found:
                method, path, ms = found.group(1), found.group(2).split("?")[0], found.group(3)
                key = f"{method} {ID_IN_PATH.sub('/{id}/', ID_IN_PATH.sub('/{id}/', path))}"
                entry = stats.setdefault(key, [0, 0.0])
                entry[0] += 1
                entry[1] += float(ms) / 1000
        return stats

    def worker_pids(self) -> list[int]:
        """gunicorn's worker processes (for py-spy)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []


@contextlib.contextmanager
def running_portal(tmp: Path, workers: int = 2, threads: int = 4):
    """Migrate, start gunicorn (the settings ``manage.py serve`` uses), yield a Portal."""
    database = choose_database()
    with isolated_env(tmp) as env:
        env["LOG_LEVEL"] = "INFO"  # the default: one line per request (--profile reads them)
        done = manage(["migrate", "-v", "0"], env, timeout=600)
        if done.returncode:
            raise RuntimeError(f"migrate failed:\n{done.stderr[-3000:]}")
        port = free_port()
        argv = [
            sys.executable, "-m", "gunicorn", "acura_portal.wsgi:application",
            "--config", "python:acura_portal.gunicorn_conf",
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--threads", str(threads),
        ]  # fmt: skip
        server = Process(argv, env, cwd=ROOT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http_ok(f"{url}/healthz", timeout=120)
            yield Portal(url, env, server.proc.pid, database, server)
        except BaseException:
            print(server.output[-3000:], file=sys.stderr)
            raise
        finally:
            server.stop()
