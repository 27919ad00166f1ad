"""A replication job of one machine: every disk through its upload session, then the result.

:func:`replicate_disks` is the library entry point (the CLI's ``replicate``, the daemon and
the benchmark call it). It creates the job (trigger ``agent``) unless given one, records the
running job in ``state_dir`` *before* uploading, replicates each disk (a committed disk is
recorded too), and reports the result. After a crash (kill -9, power loss) the record is
still there: the next run GETs that job and, while it is still running, continues it — the
server hands back the open upload session and the missing-query leaves out every chunk
already stored, so only what is missing crosses the wire again.

Failures are reported: the open session is aborted (nothing half-done becomes visible) and
the job is marked failed with the error, unless the server already ended it (cancel) or
cannot be reached (then the record stays, and the next run resumes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .changes import Extent, chunk_positions
from .disk import SourceDisk
from .errors import AgentError, Cancelled, ServerError, UnreachableError
from .index import DiskIndex, IndexCache, base_index
from .pipeline import DiskPipeline
from .progress import Halt, Progress, Reporter
from .throttle import Throttle, mbps_to_bytes

log = logging.getLogger("agent.replicate")

RESUMABLE_STATES = ("running", "committing")


@dataclass
class ReadPlan:
    """What to read of a disk: ``extents`` or, None, all of it. ``zero_elsewhere``: the
    extents are the disk's only allocated areas (everything else reads as zeros), so no base
    is needed; otherwise they are the areas changed since the base snapshot."""

    extents: list[Extent] | None = None
    zero_elsewhere: bool = False


@dataclass
class DiskSource:
    """A disk to replicate; ``extents`` (changed areas since the base) or None for all.

    ``open_fields`` go into the upload session's opening (``consistency``, ``change_id``);
    ``plan``, when given, decides the extents once the session is open — from its answer
    (``base_change_id``) and the base index — instead of ``extents``."""

    disk: SourceDisk
    extents: list[Extent] | None = None
    open_fields: dict = field(default_factory=dict)
    plan: Callable[[dict, DiskIndex | None], ReadPlan] | None = None


@dataclass
class JobResult:
    job: int
    state: str
    snapshots: list[str]
    bytes_read: int
    bytes_sent: int
    new_chunks: int
    chunks_sent: int
    seconds: float
    resumed: bool
    disks: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class JobRecords:
    """``<state_dir>/jobs/<machine id>.json``: the running job and its committed disks."""

    def __init__(self, state_dir: str | os.PathLike):
        self.root = Path(state_dir) / "jobs"

    def _path(self, machine_id: int) -> Path:
        return self.root / f"machine-{int(machine_id)}.json"

    def load(self, machine_id: int) -> dict | None:
        try:
            data = json.loads(self._path(machine_id).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("job"), int) else None

    def save(self, machine_id: int, job_id: int, snapshots: dict[str, str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(machine_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"job": job_id, "snapshots": snapshots}))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def clear(self, machine_id: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(machine_id).unlink()

    def machines(self) -> list[int]:
        """The machine ids that have a record (a job a run began and did not end)."""
        found = []
        for path in sorted(self.root.glob("machine-*.json")):
            number = path.stem.removeprefix("machine-")
            if number.isdigit():
                found.append(int(number))
        return found


def resumable_job(client, records: JobRecords, machine_id: int) -> tuple[dict, dict] | None:
    """The job a crashed run left running for this machine, with its committed disks."""
    record = records.load(machine_id)
    if record is None:
        return None
    try:
        job = client.json("GET", f"jobs/{record['job']}/")
    except ServerError as exc:
        if exc.status != 404:
            raise
        job = None
    machine = (job or {}).get("machine") or {}
    if not job or job.get("state") not in RESUMABLE_STATES or machine.get("id") != machine_id:
        records.clear(machine_id)
        return None
    done = dict(record.get("snapshots") or {})
    listed = job.get("snapshots")
    if isinstance(listed, list):  # the server's word on what this job committed wins
        done = {key: snap for key, snap in done.items() if snap in listed}
    return job, done


def effective_rate(job: dict, local_mbps: float | None) -> float | None:
    """Bytes/s: the job's limit (the portal setting) capped by the agent's own, if any."""
    limits = [m for m in (job.get("bandwidth_limit_mbps"), local_mbps) if m]
    return mbps_to_bytes(min(limits)) if limits else None


def replicate_disks(
    client,
    machine_id: int,
    sources: list[DiskSource],
    *,
    job: dict | None = None,
    state_dir: str | os.PathLike | None = None,
    threads: int | None = None,
    bandwidth_limit_mbps: float | None = None,
    halt: threading.Event | None = None,
    echo=None,
    on_progress=None,
    progress_interval: float = 1.0,
    before_result: Callable[[bool], dict] | None = None,
) -> JobResult:
    """Replicate ``sources`` of machine ``machine_id`` (a server id) as one job.

    ``job``: a job already running for this agent (the daemon's, from ``jobs/next/``);
    without one, a crashed run's job is resumed or a new one created. ``halt`` stops the
    job from outside (signals); ``echo`` receives a progress line about once a second;
    ``on_progress`` gets the job's :class:`Progress` (the daemon's heartbeat reads it).
    ``before_result(succeeded)`` runs once the disks are committed (or the job failed), just
    before the result is reported, and returns more fields for it (``warnings``,
    ``change_tracking``): a VMware job removes its snapshot there. Raises
    :class:`AgentError` after reporting the failure."""
    started = time.monotonic()
    halt = halt if halt is not None else Halt()
    threads = threads or os.cpu_count() or 2
    records = JobRecords(state_dir) if state_dir else None
    cache = IndexCache(state_dir) if state_dir else None
    done: dict[str, str] = {}
    resumed = False
    if records is not None:
        if job is None:
            found = resumable_job(client, records, machine_id)
            if found is not None:
                (job, done), resumed = found, True
        else:  # a job handed over by the daemon: continue it if a crashed run began it
            record = records.load(machine_id)
            if record is not None and record["job"] == job["id"]:
                done, resumed = dict(record.get("snapshots") or {}), True
        if resumed:
            log.info("resuming job %s (%d disk(s) already committed)", job["id"], len(done))
    if job is None:
        job = client.json("POST", "jobs/", {"machine": machine_id})
    job_id = job["id"]
    if records is not None:
        records.save(machine_id, job_id, done)
    progress = Progress(sum(s.disk.size for s in sources), base=job if resumed else None)
    if on_progress is not None:
        on_progress(progress)
    throttle = Throttle(effective_rate(job, bandwidth_limit_mbps))
    throttle.stop = halt
    reporter = Reporter(client, job_id, progress, halt, echo, progress_interval).start()
    results = []
    session = None
    try:
        for source in sources:
            key = source.disk.key
            if key in done:
                progress.add(bytes_done=source.disk.size)
                continue
            progress.set_phase(f"opening {key}")
            opening = {"machine": machine_id, "disk": key, "job": job_id, **source.open_fields}
            session = client.json("POST", "upload-sessions/", opening)
            base = base_index(client, cache, machine_id, key, session)
            plan = ReadPlan(source.extents)
            if source.plan is not None:
                plan = source.plan(session, base)
            positions = None
            if plan.extents is not None:
                positions = chunk_positions(plan.extents, int(session["chunk_size"]))
            result = DiskPipeline(
                client,
                session,
                source.disk,
                base=base,
                positions=positions,
                threads=threads,
                throttle=throttle,
                progress=progress,
                halt=halt,
                before_commit=reporter.committing,
                zero_elsewhere=plan.zero_elsewhere,
            ).run()
            session = None
            if cache is not None:
                cache.save(machine_id, key, result.index)
            done[key] = result.snapshot["id"]
            if records is not None:
                records.save(machine_id, job_id, done)
            results.append(result)
        progress.set_phase("done")
        reporter.stop()
        snapshots = [done[s.disk.key] for s in sources]
        extra = before_result(True) if before_result is not None else {}
        before_result = None  # it ran; a failure from here on must not run it again
        answer = client.json(
            "POST",
            f"jobs/{job_id}/result/",
            {"state": "succeeded", "snapshots": snapshots, **_counters(progress), **extra},
        )
    except BaseException as exc:
        reporter.stop()
        extra = {}
        if before_result is not None:
            try:
                extra = before_result(False)
            except Exception:  # the job's own error is the one to report
                log.exception("cleaning up after job %s failed", job_id)
        error = _fail(
            client, records, machine_id, job_id, session, progress, reporter, halt, exc, extra
        )
        raise error from (None if isinstance(exc, AgentError) else exc)
    if records is not None:
        records.clear(machine_id)
    mine = progress.snapshot()
    return JobResult(
        job=job_id,
        state=(answer or {}).get("state", "succeeded"),
        snapshots=snapshots,
        bytes_read=mine["bytes_read"],
        bytes_sent=mine["bytes_sent"],
        new_chunks=mine["new_chunks"],
        chunks_sent=mine["chunks_sent"],
        seconds=round(time.monotonic() - started, 3),
        resumed=resumed,
        disks=[_disk_summary(r) for r in results],
    )


def _counters(progress: Progress) -> dict:
    body = progress.for_server()
    body.pop("phase")
    return body


def _disk_summary(result) -> dict:
    return {
        "key": result.key,
        "snapshot": result.snapshot["id"],
        "delta": result.delta,
        "chunks": result.chunks,
        "changed_chunks": result.changed_chunks,
        "chunks_sent": result.chunks_sent,
        "new_chunks": result.new_chunks,
        "bytes_read": result.bytes_read,
        "bytes_sent": result.bytes_sent,
        "resumed_session": result.resumed,
    }


def _fail(client, records, machine_id, job_id, session, progress, reporter, halt, exc, extra):
    """Abort the open session and report the job failed; returns the error to raise."""
    if isinstance(exc, AgentError):
        error = exc
    elif isinstance(exc, KeyboardInterrupt):
        error = Cancelled("interrupted")
    else:
        log.exception("unexpected error in job %s", job_id)
        error = AgentError(f"internal error: {type(exc).__name__}: {exc}")
    if reporter.reason is not None:
        error = Cancelled(f"job {job_id} stopped: {reporter.reason}")
    elif isinstance(error, Cancelled) and getattr(halt, "reason", None):
        error = Cancelled(f"job {job_id} stopped: {halt.reason}")
    if session is not None:
        with contextlib.suppress(AgentError):
            client.json("POST", f"upload-sessions/{session['id']}/abort/", {"reason": str(error)})
    ended = reporter.reason is not None  # the server ended the job itself (cancel / 409)
    if not ended:
        body = {"state": "failed", "error": str(error)[:1000], "snapshots": [], **extra}
        try:
            client.json("POST", f"jobs/{job_id}/result/", {**body, **_counters(progress)})
            ended = True
        except ServerError as report_error:
            ended = report_error.status in (404, 409)  # already final on the server
            log.warning("could not report job %s failed: %s", job_id, report_error)
        except (UnreachableError, Cancelled, AgentError) as report_error:
            log.warning("could not report job %s failed: %s", job_id, report_error)
    if ended and records is not None:
        records.clear(machine_id)
    return error
