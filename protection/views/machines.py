"""Machine pages: the list with filters and bulk actions, and the machine detail page."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View
from django.views.generic import DetailView, TemplateView

from tenants.models import Role
from tenants.views.base import CustomerMixin, TenantObjectMixin

from ..forms.machines import MachineBulkForm, MachineFilterForm
from ..inheritance import effective_for_machine
from ..models import Machine, MachineGroup
from ..selectors import (
    job_log,
    latest_job,
    machine_jobs,
    machine_search,
    machines_of,
    machines_with_replication,
    with_snapshot_counts,
)
from ..services import machines as machine_services
from ..services.jobs import machines_replicate_now

PAGE_SIZE = 50
JOB_PAGE_SIZE = 20

# Column → the sort key its header links to first (a second click reverses it).
SORTABLE = {"name": "name", "status": "status", "last_replicated": "-last_replicated"}


def _toggle(current: str, key: str) -> str:
    """The sort a column header links to: its first direction, or the reverse of the
    current one when the list is already sorted by that column."""
    column = key.lstrip("-")
    if current.lstrip("-") != column:
        return key
    return column if current.startswith("-") else f"-{column}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class OperatorContextMixin:
    """Tells templates whether to show the buttons that need the operator role."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_operate"] = self.membership.has_role(Role.OPERATOR)
        return context


class MachineTableMixin(OperatorContextMixin):
    """The machine table shared by the machine list and the group detail page."""

    def machine_table_context(self, group: MachineGroup | None = None) -> dict:
        groups = list(MachineGroup.objects.for_customer(self.customer))
        form = MachineFilterForm(
            self.request.GET, customer=self.customer, groups=groups, with_group=group is None
        )
        filters = form.filters()
        if group is not None:
            filters["group"] = group
        machines = machine_search(self.customer, **filters)
        page = Paginator(machines, PAGE_SIZE).get_page(self.request.GET.get("page"))
        unfiltered = {"group": group} if group is not None else {}
        has_any = page.paginator.count > 0 or machine_search(self.customer, **unfiltered).exists()
        sort = filters.get("sort", "name")
        return {
            "filter_form": form,
            "filters_active": form.active,
            "page_obj": page,
            "machines": machines_with_replication(self.customer, page.object_list),
            "has_any_machine": has_any,
            "groups": groups,
            "sort": sort,
            "sort_links": {column: _toggle(sort, key) for column, key in SORTABLE.items()},
        }


class MachineListView(MachineTableMixin, CustomerMixin, TemplateView):
    template_name = "protection/machine_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.machine_table_context())
        return context


class MachineDetailView(OperatorContextMixin, TenantObjectMixin, DetailView):
    """Everything about one machine, with the settings it effectively replicates with."""

    model = Machine
    template_name = "protection/machine_detail.html"
    context_object_name = "machine"

    def get_queryset(self):
        return machines_of(self.customer).prefetch_related("disks")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        machine = self.object
        effective = effective_for_machine(machine)
        context["effective"] = list(effective.rows())
        context["groups"] = list(MachineGroup.objects.for_customer(self.customer))
        machines_with_replication(self.customer, [machine])  # RPO figures, active job
        context["active_job"] = machine.active_job
        context["job"] = machine.active_job or latest_job(self.customer, machine)
        context["job_log"] = job_log(self.customer, context["job"])
        jobs = machine_jobs(self.customer, machine)
        jobs_page = Paginator(jobs, JOB_PAGE_SIZE).get_page(self.request.GET.get("jobs_page"))
        jobs_page.object_list = with_snapshot_counts(self.customer, jobs_page.object_list)
        context["jobs_page"] = jobs_page
        return context


class MachineBulkActionView(CustomerMixin, View):
    """*Actions* on the selected machines (the list's, a group's, or one machine's).

    Any invalid part (a foreign or unknown machine id, a foreign group) refuses the whole
    action: the form is scoped, and nothing is written before it validates.
    """

    def post(self, request, *args, **kwargs):
        form = MachineBulkForm(request.POST, customer=self.customer, request=request)
        valid = form.is_valid()
        back = form.cleaned_data.get("next") or reverse(
            "protection:machine_list", args=[self.customer.slug]
        )
        if not valid:
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return redirect(back)
        try:
            messages.success(request, self._run(form.cleaned_data))
        except ValidationError as exc:
            for error in exc.messages:
                messages.error(request, error)
        return redirect(back)

    def _run(self, data) -> str:
        machines, action = data["machines"], data["action"]
        if action == MachineBulkForm.START:
            changed, skipped = machine_services.machines_start_protection(self.customer, machines)
            text = f"Started protection of {_plural(changed, 'machine')}."
            if skipped:
                text += f" Skipped {skipped} already protected."
            return text
        if action == MachineBulkForm.REPLICATE:
            return machines_replicate_now(
                self.customer, machines, requested_by=self.request.user
            ).message()
        if action == MachineBulkForm.STOP:
            changed, skipped = machine_services.machines_stop_protection(self.customer, machines)
            text = f"Stopped protection of {_plural(changed, 'machine')}."
            if skipped:
                text += f" Skipped {skipped} not protected."
            return text
        group = data["group"]
        moved, skipped = machine_services.machines_move(self.customer, machines, group)
        where = f"group {group.name}" if group else "no group"
        text = f"Moved {_plural(moved, 'machine')} to {where}."
        if skipped:
            text += f" Skipped {skipped} already there."
        return text
