"""What bench/vmware.py and bench/ovirt.py share: an appliance enrolled in a portal started by
bench/replication_server.py, jobs queued in the portal and run in this process by the
platform's job runner, a raw parallel read of a disk, the restore check, the table rows."""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent.config import Config
from agent.http import client_from_config
from agent.restore import restore_snapshot
from bench.store import MiB, mib, parse_size

ROOT = Path(__file__).resolve().parents[1]

QUEUE = """
from protection.models import JobTrigger, Machine
from protection.services.jobs import job_queue
from tenants.models import Customer
customer = Customer.objects.get(slug="bench")
print(job_queue(customer, Machine.objects.for_customer(customer).get(pk={machine}),
                trigger=JobTrigger.MANUAL).pk)
"""

DISCOVER_AND_PROTECT = """
from clouds.models import Cloud
from clouds.services.cloud_machines import cloud_machines_sync
from protection.models import Machine
from protection.services.machines import machines_start_protection
from tenants.models import Customer
customer = Customer.objects.get(slug="bench")
assert cloud_machines_sync(Cloud.objects.for_customer(customer).get()).ok
machines = Machine.objects.for_customer(customer).filter(name="{vm}")
machines_start_protection(customer, machines)
print(machines.get().pk)
"""


def setup(description: str, prefix: str) -> tuple[argparse.Namespace, int, Path]:
    """The benches' options, the disk size and a work folder (``/dev/shm`` when it has room;
    the peer's files live there too: ``TMPDIR``); the portal's chunk size and fsync off."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"))
    parser.add_argument("--change", type=float, default=0.01)
    parser.add_argument("--chunk-size", type=parse_size, default=parse_size("256K"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--tmp", help="work folder (default: /dev/shm when it has room)")
    args = parser.parse_args()
    size = args.size // MiB * MiB
    base = args.tmp
    if base is None and shutil.disk_usage("/dev/shm").free > 6 * size:
        base = "/dev/shm"
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    os.environ["TMPDIR"] = str(tmp)
    os.environ["ACURA_CHUNK_SIZE"] = str(args.chunk_size)
    os.environ.setdefault("ACURA_STORE_FSYNC", "0")
    return args, size, tmp


class Appliance:
    """An enrolled appliance (``python -m agent enroll``), its client and its VM's machine."""

    def __init__(self, portal, tmp: Path, token: str, platform: str, threads: int, vm_uuid: str):
        self.portal = portal
        path = tmp / "appliance.json"
        config = {
            "server": portal.url, "enrollment_token": token, "platform": platform,
            "role": "appliance", "state_dir": str(tmp / "state"), "threads": threads,
        }  # fmt: skip
        path.write_text(json.dumps(config))
        done = subprocess.run(
            [sys.executable, "-m", "agent", "enroll", "--config", str(path)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"enroll failed: {done.stderr[-2000:]}")
        self.config = Config.load(path)
        self.client = client_from_config(self.config, pool_size=self.config.threads * 2 + 4)
        heartbeat = {"version": "bench", "hostname": "bench", "vm_uuid": vm_uuid}
        self.client.json("POST", "heartbeat/", heartbeat)
        self.machine = None
        self.cloud = self.client.json("GET", "cloud/")

    def protect(self, vm_name: str) -> None:
        shell = DISCOVER_AND_PROTECT.format(vm=vm_name)
        self.machine = int(self.portal.manage("shell", "-v", "0", "-c", shell))

    def job(self, runner_class) -> tuple[float, object]:
        """Queue a job, take it from ``jobs/next/``, run it; ``(seconds, JobResult)`` with
        the runner's step ``timings`` when it keeps them."""
        shell = QUEUE.format(machine=self.machine)
        job_id = int(self.portal.manage("shell", "-v", "0", "-c", shell))
        handed = self.client.json("POST", "jobs/next/", {})
        handed = handed.get("job", handed)
        assert handed["id"] == job_id, (handed, job_id)
        started = time.perf_counter()
        runner = runner_class(
            self.client, handed, state_dir=self.config.state_dir, threads=self.config.threads
        )
        result = runner.run()
        result.timings = getattr(runner, "timings", {})
        return time.perf_counter() - started, result

    def restored_matches(self, snapshot_id: str, expected: bytes | Path, tmp: Path) -> bool:
        out = tmp / "restored.raw"
        restore_snapshot(self.client, snapshot_id, str(out), threads=self.config.threads)
        want = expected.read_bytes() if isinstance(expected, Path) else expected
        same = hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(want).digest()
        out.unlink()
        return same

    def close(self) -> None:
        self.client.close()


def timed_read(reader, size: int, chunk: int, threads: int) -> float:
    """Seconds to read a whole disk through ``reader`` (``threads`` at a time)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(
            pool.map(
                lambda offset: len(reader.read(offset, min(chunk, size - offset))),
                range(0, size, chunk),
            )
        )
    seconds = time.perf_counter() - started
    assert total == size
    return seconds


HEADER = f"{'phase':<28} {'seconds':>8} {'MiB read':>11} {'MiB sent':>11} {'MB/s read':>9}"


def row(name, seconds, result=None, size=0, note="") -> str:
    read = result.bytes_read if result else size
    sent = result.bytes_sent if result else 0
    rate = read / seconds / 1e6 if seconds else 0
    return f"{name:<28} {seconds:8.2f} {mib(read):>11} {mib(sent):>11} {rate:9.0f}  {note}"
