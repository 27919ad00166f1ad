"""Replication jobs in the portal: *Replicate now*, *Cancel*, the live progress of a
machine's job, and the customer's job list.

The progress is a small JSON document (``MachineJobStatusView``) that app.js polls while a
job is active; it is scoped through the same mixins as the pages, so another customer's
machine is a 404 there too. The services in ``protection.services.jobs`` decide everything; their
``JobError`` messages are shown as they are (they already say what to do).
"""

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect
from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import TemplateView

from tenants.views.base import CustomerMixin, TenantObjectMixin

from ..models import ACTIVE_JOB_STATES, JobState, JobTrigger, Machine, ReplicationJob
from ..selectors import (
    ACTIVE,
    effective_intervals,
    job_search,
    latest_job,
    rpo_late,
    with_snapshot_counts,
)
from ..services.jobs import JobError, job_cancel, job_queue
from ..templatetags.job_format import duration, job_speed, rpo_lag
from .machines import OperatorContextMixin

PAGE_SIZE = 50

STATE_FILTERS = [("", "Any state"), (ACTIVE, "Active (queued, running, committing)")] + [
    (state.value, state.label) for state in JobState
]


def _local(customer, value, fmt="Y-m-d H:i:s T") -> str:
    """A time in the customer's zone, formatted as the pages show it."""
    if value is None:
        return ""
    return date_filter(timezone.localtime(value, ZoneInfo(customer.time_zone or "UTC")), fmt)


def job_payload(customer, job: ReplicationJob | None) -> dict | None:
    """What the progress bar shows of ``job``: raw counters and the same words the page
    renders, so the script only copies text."""
    if job is None:
        return None
    speed = job_speed(job)
    return {
        "id": job.pk,
        "state": job.state,
        "state_display": job.get_state_display(),
        "active": job.state in ACTIVE_JOB_STATES,
        "trigger": job.trigger,
        "trigger_display": job.get_trigger_display(),
        "phase": job.phase,
        "percent": job.percent,
        "bytes_done": job.bytes_done,
        "bytes_total": job.bytes_total,
        "bytes_read": job.bytes_read,
        "bytes_sent": job.bytes_sent,
        "new_chunks": job.new_chunks,
        "speed_bps": None if speed is None else round(speed),
        "error_message": job.error_message,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "cancellable": job.state in (JobState.QUEUED, JobState.RUNNING),
        "text": {
            "done": filesizeformat(job.bytes_done),
            "total": filesizeformat(job.bytes_total) if job.bytes_total else "—",
            "read": filesizeformat(job.bytes_read),
            "sent": filesizeformat(job.bytes_sent),
            "speed": "—" if speed is None else f"{filesizeformat(int(speed))}/s",
            "duration": duration(job.duration),
            "started": _local(customer, job.started_at) or "not yet",
        },
    }


def machine_payload(customer, machine: Machine) -> dict:
    """The machine's replication state as the detail page shows it."""
    interval = effective_intervals(customer, [machine])[machine.pk]
    return {
        "id": machine.pk,
        "status": machine.status,
        "status_display": machine.get_status_display(),
        "status_message": machine.status_message,
        "last_replicated_at": (
            machine.last_replicated_at.isoformat() if machine.last_replicated_at else None
        ),
        "last_replicated": _local(customer, machine.last_replicated_at, "Y-m-d H:i T") or "never",
        "rpo_lag": rpo_lag(machine.last_replicated_at),
        "rpo_late": rpo_late(machine, interval),
    }


class MachineJobStatusView(TenantObjectMixin, View):
    """``{machine, job}``: the machine's status and its active job (or, when none is
    active, its latest one, so the page sees how the job it was showing ended)."""

    model = Machine
    http_method_names = ["get", "head"]

    def get(self, request, *args, **kwargs):
        machine = self.object
        job = latest_job(self.customer, machine)
        response = JsonResponse(
            {
                "machine": machine_payload(self.customer, machine),
                "job": job_payload(self.customer, job),
            }
        )
        response["Cache-Control"] = "no-store"
        return response


def _back(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


class MachineReplicateView(TenantObjectMixin, View):
    """*Replicate now*: a manual job for the machine's agent (operators and admins)."""

    model = Machine
    http_method_names = ["post"]

    def get_queryset(self):
        return super().get_queryset().select_related("agent")

    def post(self, request, *args, **kwargs):
        machine = self.object
        back = _back(
            request, reverse("protection:machine_detail", args=[self.customer.slug, machine.pk])
        )
        try:
            job = job_queue(
                self.customer, machine, trigger=JobTrigger.MANUAL, requested_by=request.user
            )
        except JobError as exc:
            messages.error(request, exc.message)
            return redirect(back)
        agent = machine.agent
        text = f"Replication of {machine.name} queued (job {job.pk})"
        # Agent statuses by value: protection does not import clouds (clouds stands on it).
        if agent.status == "offline":
            messages.warning(
                request,
                f"{text}, but agent {agent.display_id} is offline: the job waits until it is back.",
            )
        elif agent.status == "pending":
            messages.success(
                request, f"{text}; agent {agent.display_id} takes it once it has started."
            )
        else:
            messages.success(
                request, f"{text}: agent {agent.display_id} takes it at its next poll."
            )
        return redirect(back)


class JobCancelView(TenantObjectMixin, View):
    """*Cancel* an active job; its agent learns it at its next progress call or heartbeat."""

    model = ReplicationJob
    http_method_names = ["post"]

    def get_queryset(self):
        return super().get_queryset().select_related("machine")

    def post(self, request, *args, **kwargs):
        job = self.object
        back = _back(
            request,
            reverse("protection:machine_detail", args=[self.customer.slug, job.machine_id]),
        )
        try:
            job_cancel(self.customer, job)
        except JobError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Job {job.pk} of {job.machine.name} was cancelled.")
        return redirect(back)


class JobListView(OperatorContextMixin, CustomerMixin, TemplateView):
    """Every replication job of the customer, newest first, filtered by state."""

    template_name = "protection/job_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        state = self.request.GET.get("state", "")
        if state not in dict(STATE_FILTERS):
            state = ""
        jobs = job_search(self.customer, state=state)
        page = Paginator(jobs, PAGE_SIZE).get_page(self.request.GET.get("page"))
        context.update(
            state=state,
            state_filters=STATE_FILTERS,
            page_obj=page,
            jobs=with_snapshot_counts(self.customer, page.object_list),
            has_any_job=bool(page.paginator.count)
            or (state and job_search(self.customer).exists()),
        )
        return context
