"""The Acura agent's side of bench/replication.py.

Each runner is a fresh customer (``manage.py create_customer``), a fresh enrollment token
(``create_enrollment_token``), a fresh agent (``python -m agent enroll``, with its own state
folder: index cache, job records) whose machine is then reported (the agent's inventory) and
protected (``protection.services.machines.machines_start_protection``, as *Start Protection*
does).

Two ways to time ``replicate`` / ``restore``:

- ``cli``: ``python -m agent replicate --config C --disk IMAGE [--changed-areas F]`` as a
  process, wall time: what a user sees (interpreter start, imports, the inventory report the
  CLI sends before each job, and the job).
- ``lib``: :func:`agent.replicate.replicate_disks` / :func:`agent.restore.restore_snapshot`
  called in this process with one HTTP client kept across calls (as the daemon does): the job
  alone.
"""

import contextlib
import importlib
import json
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench import replication_profile as prof
from bench.replication_server import ID_IN_PATH
from tests.e2e_support import ROOT

_counter = iter(range(1, 1_000_000))


@dataclass
class Replication:
    seconds: float
    snapshot: str
    bytes_sent: int
    bytes_read: int
    answer: dict  # the agent's report (JSON)
    server_cpu: float = 0.0
    agent_cpu: float = 0.0


def agent_library():
    """The agent package when it has its library entry points, else None."""
    try:
        replicate = importlib.import_module("agent.replicate")
        importlib.import_module("agent.restore")
    except ImportError:
        return None
    return replicate if hasattr(replicate, "replicate_disks") else None


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class AgentRunner:
    """One enrolled agent (its own customer, config and state folder)."""

    def __init__(self, portal, folder: Path, mode: str, disk: Path, profile_dir=None):
        self.portal, self.folder, self.mode = portal, folder, mode
        self.profile_dir = profile_dir
        folder.mkdir(parents=True)
        self.config = folder / "agent.json"
        self.slug = f"bench-{mode}-{next(_counter)}-{time.time_ns() % 10**8}"
        portal.customer(self.slug)
        token = portal.enrollment_token(self.slug)
        state = str(folder / "state")
        argv = ["enroll", "--server", portal.url, "--token", token, "--config", str(self.config)]
        self.cli(*argv, "--state-dir", state)
        self.client = None
        self._open_library(disk)
        protected = portal.start_protection(self.slug)
        if not protected.startswith("(1,"):
            raise RuntimeError(f"start protection of {self.slug}'s machine: {protected}")

    def _open_library(self, disk: Path) -> None:
        """Report the machine (the CLI would do it on the first replicate, which then fails:
        not protected yet). The lib runner keeps the client for its calls."""
        from agent import inventory
        from agent.config import Config
        from agent.disk import key_for
        from agent.http import client_from_config

        self.agent_config = Config.load(self.config)
        self.client = client_from_config(self.agent_config, pool_size=16)
        key = key_for(str(disk), self.agent_config.disks)
        self.machine = inventory.report(self.client, self.agent_config, {key: str(disk)})

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def cli(self, *argv: str, label: str = "") -> tuple[dict, float]:
        """``python -m agent ARGV``; returns (its last-line JSON, wall seconds)."""
        command = [sys.executable, "-m", "agent", *argv]
        if self.profile_dir and label:
            command = prof.wrap(command, self.profile_dir / f"{label}-agent.txt")
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode:
            raise RuntimeError(
                f"agent {argv[0]} exited {done.returncode}:\n{done.stdout[-2000:]}\n"
                f"{done.stderr[-3000:]}"
            )
        lines = [line for line in done.stdout.strip().splitlines() if line.startswith("{")]
        return (json.loads(lines[-1]) if lines else {}), seconds

    def _library_replicate(self, disk: Path, areas: Path | None) -> tuple[dict, float]:
        from agent.changes import assign, load_changed_areas
        from agent.disk import SourceDisk, key_for
        from agent.replicate import DiskSource, replicate_disks

        config = self.agent_config
        started = time.perf_counter()
        source = SourceDisk(str(disk), key_for(str(disk), config.disks))
        try:
            extents = None
            if areas is not None:
                parsed = load_changed_areas(areas)
                extents = assign(parsed, [(source.key, source.path, source.size)])[source.key]
            result = replicate_disks(
                self.client,
                self.machine["id"],
                [DiskSource(source, extents)],
                state_dir=config.state_dir,
                threads=config.threads,
            )
        finally:
            source.close()
        return result.as_dict(), time.perf_counter() - started

    def replicate(self, label: str, disk: Path, areas: Path | None) -> Replication:
        server = self.portal.cpu()
        agent = children_cpu() if self.mode == "cli" else self_cpu()
        if self.mode == "cli":
            argv = ["replicate", "--config", str(self.config), "--disk", str(disk)]
            if areas:
                argv += ["--changed-areas", str(areas)]
            answer, seconds = self.cli(*argv, label=label)
        else:
            answer, seconds = self._library_replicate(disk, areas)
        server = self.portal.cpu() - server
        agent = (children_cpu() if self.mode == "cli" else self_cpu()) - agent
        if answer.get("state") != "succeeded" or not answer.get("snapshots"):
            raise RuntimeError(f"replication {label} did not succeed: {answer}")
        return Replication(
            seconds,
            answer["snapshots"][0],
            int(answer.get("bytes_sent", 0)),
            int(answer.get("bytes_read", 0)),
            answer,
            server,
            agent,
        )

    def restore(self, label: str, snapshot: str, output: Path) -> float:
        if self.mode == "cli":
            argv = ["restore", "--config", str(self.config), "--snapshot", snapshot]
            return self.cli(*argv, "--output", str(output), label=label)[1]
        from agent.restore import restore_snapshot

        started = time.perf_counter()
        restore_snapshot(self.client, snapshot, str(output), threads=4)
        return time.perf_counter() - started

    def server_figures(self, snapshots: list[str]) -> dict:
        return self.portal.figures([s for s in snapshots if s])


PROFILE_STEPS = (
    ("full", "B", False),
    ("incr", "A", False),
    ("list", "C", True),
    ("list1", "D", True),
)


@contextlib.contextmanager
def timed_requests():
    """Every agent HTTP call in this process, timed (until the answer's headers for a
    streamed one): {"METHOD path-pattern": [count, seconds]}."""
    from agent.http import Client

    stats: dict[str, list] = {}
    lock = threading.Lock()
    original = Client.request

    def request(self, method, path, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, method, path, *args, **kwargs)
        finally:
            key = f"{method} {ID_IN_PATH.sub('/{id}/', ID_IN_PATH.sub('/{id}/', path))}"
            with lock:
                entry = stats.setdefault(key, [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - started

    Client.request = request
    try:
        yield stats
    finally:
        Client.request = original


def _print_requests(stats: dict, server: dict, seconds: float) -> None:
    """The agent's HTTP calls of one phase beside the server's own time for them."""
    total = sum(t for _, t in stats.values())
    handled = sum(t for _, t in server.values())
    print(
        f"  agent lib: {seconds:.2f} s; its HTTP calls {total:.2f} s (summed over threads), "
        f"of which the server's handling {handled:.2f} s"
    )
    print(f"    {'calls':>5}  {'agent s':>7}  {'server s':>8}  {'ms each':>12}  request")
    for key, (count, spent) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
        on_server = server.get(key, [0, 0.0])[1]
        each = f"{1000 * spent / count:.0f} / {1000 * on_server / count:.0f}"
        print(f"    {count:5d}  {spent:7.3f}  {on_server:8.3f}  {each:>12}  {key}")


def profile_run(portal, folder: Path, disk: Path, points: dict, restored: Path, place) -> None:
    """Two more runs: the CLI under py-spy (the agent process and the server's workers),
    and the library with every HTTP call timed, phase by phase."""
    folder.mkdir(parents=True)
    print(
        "\nprofile: py-spy on one more CLI run (agent: all threads; server: the gunicorn "
        "workers),\nsamples by kind in thread-seconds, then the top frames of the working "
        "samples;\nand one more library run with every HTTP call timed"
    )
    spy = prof.py_spy()
    if not spy:
        print(f"  py-spy not found ({prof.INSTALL_HINT}): HTTP timings only")
    cli = AgentRunner(portal, folder / "cli", "cli", disk, profile_dir=folder) if spy else None
    lib = AgentRunner(portal, folder / "lib", "lib", disk)
    for phase, name, with_list in PROFILE_STEPS:
        place(points[name], disk)
        areas = points[name].areas if with_list else None
        print(f"\n== {phase} ({name})")
        if cli is not None:
            attached = prof.Attached(portal.worker_pids(), folder, phase)
            cli_result = cli.replicate(phase, disk, areas)
            server_files = attached.stop()
            seconds = cli_result.seconds
            print(f"  agent CLI under py-spy: {seconds:.2f} s")
            prof.report("agent process", [folder / f"{phase}-agent.txt"], seconds)
            prof.report("server workers", server_files, seconds)
        since = len(portal.process.lines)
        with timed_requests() as stats:
            result = lib.replicate(phase, disk, areas)
        time.sleep(0.2)  # the server's last log lines
        _print_requests(stats, portal.request_times(since), result.seconds)
    print("\n== restore (D)")
    if cli is not None:
        attached = prof.Attached(portal.worker_pids(), folder, "restore")
        seconds = cli.restore("restore", cli_result.snapshot, restored)
        server_files = attached.stop()
        print(f"  agent CLI under py-spy: {seconds:.2f} s")
        prof.report("agent process", [folder / "restore-agent.txt"], seconds)
        prof.report("server workers", server_files, seconds)
        cli.close()
    since = len(portal.process.lines)
    with timed_requests() as stats:
        seconds = lib.restore("restore", result.snapshot, restored)
    time.sleep(0.2)
    _print_requests(stats, portal.request_times(since), seconds)
    lib.close()
