"""What the appliances' job runners (agent/vmware, agent/ovirt) share: the job's identity and
settings, its warnings, the hand-over to the common pipeline, and the failure report.

A runner subclasses :class:`PlatformJob`: its ``run`` does the platform's steps, calls
:meth:`replicate` with one :class:`~agent.replicate.DiskSource` per disk, and cleans up in
``_finish(succeeded)`` (called once, just before the result is reported, also after a
failure) which returns :meth:`result_fields`. A failure before the pipeline started is
reported by :meth:`report_failed`; after, the pipeline reports it.
"""

from __future__ import annotations

import abc
import logging

from .errors import AgentError
from .replicate import DiskSource, JobResult, replicate_disks

log = logging.getLogger("agent.platform")

MAX_WARNINGS, MAX_WARNING_LENGTH = 20, 1000  # what the server keeps (PROTOCOL.md)


class PlatformJob(abc.ABC):
    def __init__(self, client, job: dict, *, state_dir=None, threads=2, bandwidth=None,
                 halt=None, on_progress=None):  # fmt: skip
        self.client, self.job, self.job_id = client, job, job["id"]
        self.machine = job.get("machine") or {}
        self.state_dir, self.threads, self.bandwidth = state_dir, max(1, threads), bandwidth
        self.halt, self.on_progress = halt, on_progress
        self.warnings: list[str] = []
        self.finished = self.in_pipeline = False

    def replicate(self, sources: list[DiskSource]) -> JobResult:
        """The disks through the common pipeline; ``_finish`` runs before the result goes."""
        self.in_pipeline = True
        return replicate_disks(
            self.client,
            self.machine["id"],
            sources,
            job=self.job,
            state_dir=self.state_dir,
            threads=self.threads,
            bandwidth_limit_mbps=self.bandwidth,
            halt=self.halt,
            on_progress=self.on_progress,
            before_result=self._finish,
        )

    @abc.abstractmethod
    def _finish(self, succeeded: bool) -> dict:
        """The platform's clean-up; the result's extra fields (:meth:`result_fields`)."""

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        self.warnings.append(message)

    def result_fields(self) -> dict:
        """``warnings`` for the result: each once, at most what the server keeps."""
        unique = list(dict.fromkeys(self.warnings))
        if len(unique) > MAX_WARNINGS:
            more = len(unique) - MAX_WARNINGS + 1
            unique = [*unique[: MAX_WARNINGS - 1], f"… and {more} more"]
        return {"warnings": [w[:MAX_WARNING_LENGTH] for w in unique]}

    def report_failed(self, error: AgentError) -> None:
        """Report the job failed when the pipeline did not (it reports its own failures)."""
        if self.in_pipeline:
            return
        body = {"state": "failed", "error": str(error)[:1000], "snapshots": [],
                **self.result_fields()}  # fmt: skip
        try:
            self.client.json("POST", f"jobs/{self.job_id}/result/", body)
        except AgentError as report_error:
            log.warning("could not report job %s failed: %s", self.job_id, report_error)
