"""Display formats of replication jobs: durations, transfer speeds, RPO lag.

The JSON progress endpoint (``protection.views.jobs``) uses the same functions, so the
numbers app.js writes into the page read exactly like the ones the server rendered.
"""

from datetime import timedelta

from django import template
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 04 min``, ``3 d 2 h``; ``—`` when there is none."""
    if value is None or value == "":
        return "—"
    seconds = max(0, int(value.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def job_speed(job) -> float | None:
    """Average progress in bytes per second, over the time the job has been running up to
    its last progress report (or its end); None before there is a meaningful figure."""
    if job.started_at is None or not job.bytes_done:
        return None
    until = job.finished_at or job.last_progress_at or timezone.now()
    seconds = (until - job.started_at).total_seconds()
    if seconds < 1:
        return None
    return job.bytes_done / seconds


@register.filter
def speed(job) -> str:
    """The job's average speed as ``12.3 MB/s``; ``—`` before there is one."""
    value = job_speed(job)
    return "—" if value is None else f"{filesizeformat(int(value))}/s"


@register.filter
def rpo_lag(last_replicated_at, now=None) -> str:
    """How long ago the machine's last replication point is (the RPO it has right now)."""
    if not last_replicated_at:
        return "—"
    return timesince(last_replicated_at, now or timezone.now(), depth=2)
