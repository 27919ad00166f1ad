"""``run``: the agent as a service — heartbeat, inventory, take jobs, ship logs.

One background thread heartbeats every ``heartbeat_seconds`` (the server may change the
interval, switch debug logging on, or list jobs to cancel) and carries the running job's
progress; another ships log records to ``events/`` in batches. The main thread reports the
inventory at start and every ``inventory_minutes``, continues a job a crashed run left
running, and polls ``jobs/next/``. SIGTERM/SIGINT stop it cleanly: the running job is
stopped, its session aborted and the job reported failed, logs are flushed.

A server that cannot be reached is waited for (with backoff), never fatal; a rejected
credential is (exit 3): a revoked agent must stop, not hammer the server.
"""

from __future__ import annotations

import collections
import datetime as dt
import importlib
import logging
import socket
import threading
import time

from . import __version__, inventory
from .disk import SourceDisk
from .errors import EXIT_OK, AgentError, AuthError, Cancelled, UnreachableError
from .http import client_from_config
from .progress import Halt
from .replicate import DiskSource, JobRecords, replicate_disks, resumable_job

log = logging.getLogger("agent.daemon")
shipper_log = logging.getLogger("agent.shipper")  # never shipped (no loops)

# The appliance job runners: platform -> (module, class, its requirements file).
RUNNERS = {
    "vmware": (".vmware.job", "VMwareJob", "requirements-vmware.txt"),
    "ovirt": (".ovirt.job", "OVirtJob", "requirements-ovirt.txt"),
}

MAX_EVENTS_PER_CALL = 500
MAX_QUEUED_EVENTS = 20_000


class EventShipper(logging.Handler):
    """Queues the agent's log records and POSTs them to ``events/`` every few seconds."""

    def __init__(self, client, daemon: Daemon, interval: float = 3.0):
        super().__init__(level=logging.DEBUG)
        self.client, self.daemon, self.interval = client, daemon, interval
        self.queue: collections.deque = collections.deque(maxlen=MAX_QUEUED_EVENTS)
        self.debug = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(shipper_log.name) or not record.name.startswith("agent"):
            return
        if record.levelno < logging.INFO and not self.debug:
            return
        if record.name == "agent.http" and "/events/" in record.getMessage():
            return  # shipping the log of shipping would never end
        level = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning"}.get(
            record.levelno, "error"
        )
        event = {
            "level": level,
            "message": self.format(record)[:10_000],
            "occurred_at": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
        }
        job = self.daemon.current_job_id
        if job is not None:
            event["job"] = job
        self.queue.append(event)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self.flush_events()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush_events()

    def flush_events(self) -> None:
        while self.queue:
            batch = [self.queue.popleft() for _ in range(min(MAX_EVENTS_PER_CALL, len(self.queue)))]
            try:
                self.client.json("POST", "events/", {"events": batch})
            except AgentError as exc:
                shipper_log.warning("could not send %d log event(s): %s", len(batch), exc)
                self.queue.extendleft(reversed(batch))  # keep them for the next try
                return


class Daemon:
    def __init__(self, config, halt: Halt | None = None):
        self.config = config
        self.halt = halt if halt is not None else Halt()
        threads = config.threads
        self.client = client_from_config(config, stop=self.halt, pool_size=threads * 2 + 4)
        self.heartbeat_seconds = max(1, int(config.get("heartbeat_seconds") or 15))
        self.current_job_id: int | None = None
        self.job_halt: Halt | None = None
        self.progress = None
        self.exit_code = EXIT_OK
        self.machine: dict | None = None
        self.shipper = EventShipper(self.client, self)
        self._interrupted_checked = False

    # -- lifecycle ----------------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        self.halt.stop(reason)
        if self.job_halt is not None:
            self.job_halt.stop(reason)

    def run(self) -> int:
        root = logging.getLogger("agent")
        root.addHandler(self.shipper)
        self.shipper.start()
        heart = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        log.info("agent %s started (version %s)", self.config.get("display_id"), __version__)
        heart.start()
        try:
            self._main_loop()
        finally:
            self.halt.set()
            heart.join(timeout=15)
            log.info("agent stopped: %s", self.halt.reason or "done")
            root.removeHandler(self.shipper)
            self.shipper.stop()
            self.client.close()
        return self.exit_code

    def _fatal(self, error: AgentError) -> None:
        log.error("%s; stopping", error)
        self.exit_code = error.exit_code
        self.stop(str(error))

    # -- heartbeat ----------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        while not self.halt.is_set():
            self.heartbeat()
            self.halt.wait(self.heartbeat_seconds)

    def heartbeat(self) -> None:
        body = {"version": __version__, "hostname": socket.gethostname()}
        if inventory.is_appliance(self.config):
            body["vm_uuid"] = inventory.vm_uuid(self.config)
        if self.current_job_id is not None and self.progress is not None:
            s = self.progress.for_server()
            body["job"] = {
                "id": self.current_job_id,
                "bytes_done": s["bytes_done"],
                "bytes_total": s["bytes_total"],
                "phase": s["phase"],
            }
        try:
            answer = self.client.json("POST", "heartbeat/", body) or {}
        except AuthError as exc:
            self._fatal(exc)
            return
        except AgentError as exc:
            log.warning("heartbeat failed: %s", exc)
            return
        seconds = answer.get("heartbeat_seconds")
        if isinstance(seconds, int) and seconds > 0:
            self.heartbeat_seconds = seconds
        debug = bool(answer.get("debug_logging"))
        if debug != self.shipper.debug:
            self.shipper.debug = debug
            logging.getLogger("agent").setLevel(logging.DEBUG if debug else logging.INFO)
            log.info("debug logging %s", "on" if debug else "off")
        job_id, job_halt = self.current_job_id, self.job_halt
        if job_halt is not None and job_id in (answer.get("cancel_jobs") or []):
            job_halt.stop("the job was cancelled in the portal")

    # -- main loop ---------------------------------------------------------------------------

    def _main_loop(self) -> None:
        poll = max(1, int(self.config.get("poll_seconds") or 5))
        every = max(1, int(self.config.get("inventory_minutes") or 5)) * 60
        next_inventory = 0.0
        failures = 0
        while not self.halt.is_set():
            try:
                if inventory.is_appliance(self.config):
                    # The portal discovers an appliance's machines from its cloud; what a
                    # crashed run left running is ended once.
                    if not self._interrupted_checked:
                        self._end_interrupted_jobs()
                        self._interrupted_checked = True
                elif time.monotonic() >= next_inventory:
                    self.machine = inventory.report(self.client, self.config)
                    next_inventory = time.monotonic() + every
                    log.debug("inventory reported (machine %s)", self.machine.get("id"))
                    self._resume_crashed_job()
                answer = self.client.request("POST", "jobs/next/", json_body={})
                job = answer.json() if answer.status == 200 else None
                failures = 0
                if job:
                    self.execute((job or {}).get("job", job))
                    continue
            except AuthError as exc:
                self._fatal(exc)
                return
            except UnreachableError as exc:
                failures += 1
                log.warning("%s; trying again", exc)
                self.halt.wait(min(60, poll * 2**failures))
                continue
            except AgentError as exc:
                if self.halt.is_set():
                    return
                log.error("%s", exc)
            self.halt.wait(poll)

    def _end_interrupted_jobs(self) -> None:
        """An appliance's jobs that a crashed run (kill, reboot) left running are ended as
        failed at once, not left for the portal's stuck-job check: a VM's job cannot go on
        from another run's snapshot, so the next job takes a new one (and removes the one left
        behind); chunks the interrupted job uploaded are not sent again."""
        if self.config.state_dir is None:
            return
        records = JobRecords(self.config.state_dir)
        for machine_id in records.machines():
            found = resumable_job(self.client, records, machine_id)
            if found is None:
                continue
            job = found[0]
            name = (job.get("machine") or {}).get("name")
            log.warning(
                "job %s of %s was interrupted by a restart of the agent; ending it", job["id"], name
            )
            self._report_failed(
                job["id"],
                "the appliance restarted during this job; the next job takes a new snapshot "
                "(and removes the one this job left behind)",
            )
            records.clear(machine_id)

    def _resume_crashed_job(self) -> None:
        if self.machine is None or self.config.state_dir is None:
            return
        found = resumable_job(self.client, JobRecords(self.config.state_dir), self.machine["id"])
        if found is not None:
            log.info("continuing job %s that an earlier run left running", found[0]["id"])
            self.execute(found[0])

    def execute(self, job: dict) -> None:
        """Run one job to its end (success or a reported failure); never raises AgentError
        except for a rejected credential."""
        job_id = job["id"]
        self.current_job_id, self.job_halt = job_id, Halt()
        if self.halt.is_set():
            self.job_halt.stop(self.halt.reason or "stopping")
        sources: list[DiskSource] = []
        try:
            if self._runs_on_platform():
                result = self._platform_job(job)
            else:
                sources = self._sources(job)
                result = replicate_disks(
                    self.client,
                    job["machine"]["id"],
                    sources,
                    job=job,
                    state_dir=self.config.state_dir,
                    threads=self.config.threads,
                    bandwidth_limit_mbps=self.config.get("bandwidth_limit_mbps"),
                    halt=self.job_halt,
                    on_progress=self._track,
                )
            log.info(
                "job %s %s: %d snapshot(s), %.1f MiB read, %.1f MiB sent, %d new chunks",
                job_id,
                result.state,
                len(result.snapshots),
                result.bytes_read / 2**20,
                result.bytes_sent / 2**20,
                result.new_chunks,
            )
        except AuthError:
            raise
        except Cancelled as exc:  # the portal's cancel or a stop: not an error of the agent
            message = str(exc)
            if not message.startswith(f"job {job_id} "):
                message = f"job {job_id} stopped: {message}"
            log.info("%s", message)
        except AgentError as exc:
            log.error("job %s failed: %s", job_id, exc)
        finally:
            for source in sources:
                source.disk.close()
            self.current_job_id, self.job_halt, self.progress = None, None, None

    def _track(self, progress) -> None:
        self.progress = progress

    def _runs_on_platform(self) -> bool:
        """Whether jobs run through a platform's API (an appliance), not on local disks."""
        return inventory.is_appliance(self.config) and self.config.get("platform") in RUNNERS

    def _platform_job(self, job: dict):
        """A VM's job through its platform (vCenter or the oVirt engine); the platform's SDK is
        imported only here, so an agent without it (Linux, Windows) never needs it."""
        platform = self.config.get("platform")
        module, name, requirements = RUNNERS[platform]
        try:
            runner = getattr(importlib.import_module(module, __package__), name)
        except ImportError as exc:
            message = (
                f"this appliance cannot replicate {platform} VMs: a Python module is missing "
                f"({exc}); install it with pip install -r agent/{requirements}"
            )
            self._report_failed(job["id"], message)
            raise AgentError(message) from None
        return runner(
            self.client,
            job,
            state_dir=self.config.state_dir,
            threads=self.config.threads,
            bandwidth=self.config.get("bandwidth_limit_mbps"),
            halt=self.job_halt,
            on_progress=self._track,
        ).run()

    def _sources(self, job: dict) -> list[DiskSource]:
        """Open the job's disks; a disk that is not here fails the job (reported)."""
        own = inventory.machine_id(self.config)
        machine = job.get("machine") or {}
        paths = inventory.configured_disks(self.config)
        keys = [d["key"] for d in job.get("disks") or []] or list(paths)
        sources: list[DiskSource] = []
        try:
            if inventory.is_appliance(self.config):
                raise AgentError(
                    f"job {job['id']} is for VM {machine.get('name')!r}: reading VM disks "
                    f"through the {self.config.get('platform')} API (snapshots and changed "
                    "blocks) is not part of this agent version"
                )
            if machine.get("external_id") not in (None, own):
                raise AgentError(
                    f"job {job['id']} is for machine {machine.get('name')!r}, which this agent "
                    f"(on {own}) cannot read"
                )
            for key in keys:
                if key not in paths:
                    raise AgentError(
                        f"disk {key!r} has no path on this agent; add it to the config's disks"
                    )
                sources.append(DiskSource(SourceDisk(paths[key], key)))
        except AgentError as exc:
            for source in sources:
                source.disk.close()
            self._report_failed(job["id"], str(exc))
            raise
        return sources

    def _report_failed(self, job_id: int, message: str) -> None:
        body = {"state": "failed", "error": message[:1000], "snapshots": []}
        try:
            self.client.json("POST", f"jobs/{job_id}/result/", body)
        except AuthError:
            raise
        except AgentError as exc:
            log.warning("could not report job %s failed: %s", job_id, exc)
