"""Job progress: counters shared by the pipeline threads, reported about once a second.

The reporter posts the cumulative counters to ``jobs/{id}/progress/`` and prints a line to
stderr (the CLI's human progress). The server's answer is how a job is cancelled: ``cancel:
true`` or a 409 (the job is no longer running, e.g. cancelled, or failed by the stuck-job
check) sets the halt event the pipeline watches, and records why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .errors import AgentError, AuthError, Cancelled, ServerError

log = logging.getLogger("agent.progress")

COUNTERS = ("bytes_done", "bytes_total", "bytes_read", "bytes_sent", "new_chunks", "chunks_sent")
MiB = 1 << 20


class Halt(threading.Event):
    """The event that stops a job, with the first reason given (a signal, a cancel)."""

    reason: str | None = None

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.set()


class Progress:
    """Cumulative counters of one job run. ``base`` holds the counters the server already
    had for the job (a resumed job), added to what the server is told but not to this run's
    own figures."""

    def __init__(self, bytes_total: int = 0, base: dict | None = None):
        self._lock = threading.Lock()
        self.bytes_total = bytes_total
        self.bytes_done = 0
        self.bytes_read = 0
        self.bytes_sent = 0
        self.new_chunks = 0
        self.chunks_sent = 0
        self.phase = "starting"
        self.base = {k: int((base or {}).get(k) or 0) for k in ("bytes_read", "bytes_sent")}
        self.base["new_chunks"] = int((base or {}).get("new_chunks") or 0)
        self.started = time.monotonic()

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def set_phase(self, phase: str) -> None:
        self.phase = phase[:64]

    def snapshot(self) -> dict:
        with self._lock:
            return {name: getattr(self, name) for name in COUNTERS} | {"phase": self.phase}

    def for_server(self) -> dict:
        """The progress body: cumulative over the whole job (earlier runs included)."""
        s = self.snapshot()
        return {
            "phase": s["phase"],
            "bytes_done": min(s["bytes_done"], s["bytes_total"]),
            "bytes_total": s["bytes_total"],
            "bytes_read": s["bytes_read"] + self.base["bytes_read"],
            "bytes_sent": s["bytes_sent"] + self.base["bytes_sent"],
            "new_chunks": s["new_chunks"] + self.base["new_chunks"],
        }

    def line(self) -> str:
        s = self.snapshot()
        seconds = max(1e-6, time.monotonic() - self.started)
        percent = 100 * s["bytes_done"] // s["bytes_total"] if s["bytes_total"] else 100
        return (
            f"{s['phase']}: {percent}% of {s['bytes_total'] / MiB:.0f} MiB, "
            f"read {s['bytes_read'] / MiB:.0f} MiB ({s['bytes_read'] / MiB / seconds:.0f} MiB/s), "
            f"sent {s['bytes_sent'] / MiB:.1f} MiB, {s['new_chunks']} new chunks"
        )


class Reporter:
    """Posts progress every ``interval`` seconds in a background thread until stopped."""

    def __init__(
        self,
        client,
        job_id: int | None,
        progress: Progress,
        halt: threading.Event,
        echo: Callable[[str], None] | None = None,
        interval: float = 1.0,
    ):
        self.client, self.job_id, self.progress = client, job_id, progress
        self.halt = halt
        self.echo = echo
        self.interval = interval
        self.reason: str | None = None  # why the server wants the job stopped
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def start(self) -> Reporter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self.report()

    def report(self) -> None:
        with self._lock:  # the ticker and committing() must not interleave their posts
            self._report()

    def _report(self) -> None:
        if self.echo is not None:
            self.echo(self.progress.line())
        if self.job_id is None:
            return
        try:
            answer = self.client.json(
                "POST", f"jobs/{self.job_id}/progress/", self.progress.for_server()
            )
        except ServerError as exc:
            if exc.status == 409:
                self._cancel(f"the job is no longer running on the server: {exc.server_message}")
            else:
                log.warning("progress report refused: %s", exc)
            return
        except AuthError as exc:
            self._cancel(str(exc))
            return
        except AgentError as exc:  # unreachable for now: the pipeline's own calls will tell
            log.warning("progress report failed: %s", exc)
            return
        if isinstance(answer, dict) and answer.get("cancel"):
            self._cancel("the job was cancelled in the portal")

    def committing(self) -> None:
        """Tell the server now (not at the next tick) that a commit begins: the job moves to
        *committing* and can no longer be cancelled. A job cancelled meanwhile stops here,
        before anything is committed."""
        self.progress.set_phase("committing")
        self.report()
        if self.reason is not None:
            raise Cancelled(self.reason)

    def _cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            log.warning("stopping job %s: %s", self.job_id, reason)
        if isinstance(self.halt, Halt):
            self.halt.stop(reason)
        else:
            self.halt.set()
