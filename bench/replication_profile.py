"""``--profile`` for bench/replication.py: py-spy samples the agent process (every thread) and
the gunicorn workers during one phase; the top frames say where the time goes.

py-spy is not a project requirement: ``.venv/bin/pip install py-spy`` (it needs ptrace, which
root has). Samples are of threads that are running (py-spy's default, no ``--idle``), so
waiting on the server or on a lock does not count; C work (SHA-256, zstd, socket writes) shows
as the Python line that called it.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

RATE = 250  # samples a second

INSTALL_HINT = ".venv/bin/pip install py-spy"


def py_spy() -> str | None:
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


def wrap(argv: list[str], out: Path) -> list[str]:
    """``argv`` run under py-spy, writing collapsed stacks to ``out``."""
    return [py_spy(), "record", "-r", str(RATE), "-f", "raw", "-o", str(out), "--", *argv]


class Attached:
    """py-spy attached to running processes (the server's workers) for one phase."""

    def __init__(self, pids: list[int], folder: Path, label: str):
        self.outs = [folder / f"{label}-server-{pid}.txt" for pid in pids]
        self.procs = [
            subprocess.Popen(
                [py_spy(), "record", "-r", str(RATE), "-f", "raw", "-o", str(out), "-p", str(pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid, out in zip(pids, self.outs, strict=True)
        ]
        time.sleep(0.5)  # let py-spy attach before the phase starts

    def stop(self) -> list[Path]:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return [out for out in self.outs if out.exists()]


def read_stacks(paths: list[Path]) -> Counter:
    """Collapsed stacks ("outer;...;inner count" per line) of several files, added up."""
    stacks: Counter = Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[stack] += int(count)
    return stacks


def _function(frame: str) -> str:
    """'name (file.py:123)' -> 'name (file.py)': inclusive time is per function."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rstrip(')')})" if where else name


def _short(frame: str) -> str:
    """Paths relative to the repository or site-packages, so lines stay readable."""
    for marker in ("site-packages/", f"{Path(__file__).resolve().parents[1]}/"):
        frame = frame.replace(marker, "") if marker in frame else frame
    lib = os.path.dirname(os.__file__) + "/"
    return frame.replace(lib, "")


# Leaf frames that are a thread waiting, not working: py-spy's idle detection misses many
# of them on a loaded machine (a runnable thread waiting for a core counts as running).
WAITING = (
    "Condition.wait (threading.py",
    "Event.wait (threading.py",
    "Thread.join (threading.py",
    "_wait_for_tstate_lock (threading.py",
    "_worker (concurrent/futures/thread.py",
    "Queue.get (queue.py",
    "select (selectors.py",
    "EpollSelector.select (selectors.py",
    "PollSelector.select (selectors.py",
    "sleep (",
)
PROJECT = ("agent/", "storage/", "clouds/", "protection/", "tenants/", "acura_portal/")


def category(frames: list[str]) -> str:
    leaf = frames[-1]
    if any("importlib._bootstrap" in f for f in frames):
        return "imports (interpreter start)"
    if leaf.startswith(WAITING):
        return "idle (pools, selectors, locks)"
    if leaf.startswith("SocketIO.readinto (socket.py"):
        return "socket receive (mostly waiting for the other side)"
    if leaf.startswith("Connection.wait (psycopg"):
        return "waiting on PostgreSQL"
    return "work"


def report(title: str, paths: list[Path], seconds: float, top: int = 10) -> None:
    """Print where the samples went: per category (thread-seconds), then the top frames of
    the working samples by self time and the project's functions by inclusive time."""
    stacks = read_stacks(paths)
    total = sum(stacks.values())
    print(f"  {title}: {total / RATE:.2f} thread-s sampled in {seconds:.2f} s")
    if not total:
        return
    kinds: Counter = Counter()
    own: Counter = Counter()
    inclusive: Counter = Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        kind = category(frames)
        kinds[kind] += count
        if kind != "work":
            continue
        own[frames[-1]] += count
        for function in {_function(f) for f in frames}:
            if function.split(" (", 1)[-1].startswith(PROJECT):
                inclusive[function] += count
    print("    " + "; ".join(f"{k} {n / RATE:.2f}" for k, n in kinds.most_common()))
    work = kinds["work"]
    if not work:
        return
    print(f"    {'self %':>6}  frame (% of the working samples)")
    for frame, count in own.most_common(top):
        print(f"    {100 * count / work:6.1f}  {_short(frame)}")
    print(f"    {'incl %':>6}  project function")
    for function, count in inclusive.most_common(top):
        print(f"    {100 * count / work:6.1f}  {_short(function)}")
