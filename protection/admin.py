"""Provider admin for machine groups, machines, disks and replication policies.

Every class derives from ``TenantAdmin``, which opens the tenant scope on purpose (the
provider sees all customers), lets staff choose the customer of a new row, and refuses a
related row of another customer (a machine in a group of a different customer).
"""

from collections import defaultdict

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.template.defaultfilters import filesizeformat

from tenants.admin.base import TenantAdmin, TenantAdminForm, TenantInline

from .models import (
    ACTIVE_JOB_STATES,
    Disk,
    Machine,
    MachineGroup,
    ReplicationJob,
    ReplicationPolicy,
)
from .services.jobs import JobError, job_cancel
from .services.machines import machines_start_protection, machines_stop_protection
from .services.policy import POLICY_FIELDS, policy_check


class MachineGroupAdminForm(TenantAdminForm):
    def clean(self):
        # The same rule as the group pages: names are unique per customer ignoring case.
        data = super().clean()
        customer, name = self._customer(), data.get("name")
        if customer is not None and name:
            same = MachineGroup.objects.for_customer(customer).filter(name__iexact=name)
            if same.exclude(pk=self.instance.pk).exists():
                self.add_error("name", f"{customer} already has a group named “{name}”.")
        return data


@admin.register(MachineGroup)
class MachineGroupAdmin(TenantAdmin):
    form = MachineGroupAdminForm
    list_display = ["name", "customer", "machine_count", "created_at"]
    list_filter = ["customer"]
    search_fields = ["name", "description", "customer__name", "customer__slug"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_machine_count=Count("machines"))

    @admin.display(description="Machines", ordering="_machine_count")
    def machine_count(self, obj):
        return obj._machine_count


class DiskInline(TenantInline):
    model = Disk
    fields = ["key", "label", "size_bytes"]


def _per_customer(queryset):
    """The selected machines grouped by customer: the protection services act on one
    customer at a time."""
    by_customer = defaultdict(list)
    for machine in queryset.select_related("customer"):
        by_customer[machine.customer].append(machine)
    return by_customer.items()


@admin.register(Machine)
class MachineAdmin(TenantAdmin):
    list_display = [
        "name",
        "customer",
        "platform",
        "group",
        "status",
        "os_name",
        "last_replicated_at",
        "next_run_at",
    ]
    list_filter = ["status", "platform", "customer", "group"]
    search_fields = [
        "name",
        "external_id",
        "os_name",
        "ip_addresses",
        "customer__name",
        "customer__slug",
    ]
    list_select_related = ["customer", "group"]
    readonly_fields = ["created_at", "updated_at"]
    date_hierarchy = "created_at"
    inlines = [DiskInline]
    actions = ["start_protection", "stop_protection"]

    def _act(self, request, queryset, service, verb):
        changed = skipped = 0
        for customer, machines in _per_customer(queryset):
            done, left = service(customer, machines)
            changed, skipped = changed + done, skipped + left
        note = f" ({skipped} skipped: already {verb})" if skipped else ""
        self.message_user(request, f"{changed} machine(s) {verb}{note}.", messages.SUCCESS)

    @admin.action(description="Start protection of selected machines")
    def start_protection(self, request, queryset):
        self._act(request, queryset, machines_start_protection, "protected")

    @admin.action(description="Stop protection of selected machines")
    def stop_protection(self, request, queryset):
        self._act(request, queryset, machines_stop_protection, "unprotected")


@admin.register(Disk)
class DiskAdmin(TenantAdmin):
    list_display = ["__str__", "key", "machine", "customer", "size"]
    list_filter = ["customer", "machine__platform"]
    search_fields = ["key", "label", "machine__name", "customer__name", "customer__slug"]
    list_select_related = ["customer", "machine"]
    autocomplete_fields = ["machine"]

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, obj):
        return filesizeformat(obj.size_bytes)


class ReplicationPolicyAdminForm(TenantAdminForm):
    """Provider edits obey the settings pages' rules (``policy_check``): interval bounds,
    the window, weekdays, and that every affected level still keeps snapshots."""

    def clean(self):
        data = super().clean()
        if data.get("group") and data.get("machine"):
            raise ValidationError(
                "A policy belongs to one level: choose a group or a machine, not both "
                "(neither makes it the customer's own policy)."
            )
        customer = data.get("customer") or getattr(self.instance, "customer", None)
        if customer is not None and not self.errors:
            level = data.get("machine") or data.get("group") or customer
            values = {name: data.get(name) for name in POLICY_FIELDS}
            try:
                policy_check(customer, level, values)
            except ValidationError as exc:
                raise ValidationError(exc.messages) from None
        return data


@admin.register(ReplicationPolicy)
class ReplicationPolicyAdmin(TenantAdmin):
    form = ReplicationPolicyAdminForm
    list_display = [
        "__str__",
        "customer",
        "level",
        "enabled",
        "interval_minutes",
        "keep_last",
        "keep_daily",
        "updated_at",
    ]
    list_filter = ["customer", "enabled"]
    search_fields = ["customer__name", "customer__slug", "group__name", "machine__name"]
    list_select_related = ["customer", "group", "machine"]
    autocomplete_fields = ["machine"]
    readonly_fields = ["updated_at"]

    @admin.display(description="Level")
    def level(self, obj):
        if obj.machine_id:
            return "machine"
        return "group" if obj.group_id else "customer"


@admin.register(ReplicationJob)
class ReplicationJobAdmin(TenantAdmin):
    """Jobs are written by the job state machine only (``protection.services.jobs``): staff watch
    them here and may cancel active ones, through ``job_cancel`` like the portal."""

    list_display = [
        "id",
        "machine",
        "customer",
        "agent",
        "trigger",
        "state",
        "progress",
        "created_at",
        "started_at",
        "finished_at",
        "sent",
        "error_message",
    ]
    list_filter = ["state", "trigger", "customer", "created_at"]
    search_fields = ["=id", "machine__name", "customer__name", "customer__slug", "error_message"]
    list_select_related = ["customer", "machine", "agent"]
    date_hierarchy = "created_at"
    actions = ["cancel_jobs"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Progress")
    def progress(self, obj):
        if obj.bytes_total:
            return f"{obj.percent}% of {filesizeformat(obj.bytes_total)}"
        return f"{obj.percent}%"

    @admin.display(description="Read / sent", ordering="bytes_sent")
    def sent(self, obj):
        return f"{filesizeformat(obj.bytes_read)} / {filesizeformat(obj.bytes_sent)}"

    @admin.action(description="Cancel selected active jobs")
    def cancel_jobs(self, request, queryset):
        cancelled, refused = 0, []
        skipped = queryset.exclude(state__in=ACTIVE_JOB_STATES).count()
        for job in queryset.filter(state__in=ACTIVE_JOB_STATES).select_related("customer"):
            try:
                job_cancel(job.customer, job)
            except JobError as exc:
                refused.append(exc.message)
            else:
                cancelled += 1
        note = f" {skipped} already ended." if skipped else ""
        self.message_user(request, f"{cancelled} job(s) cancelled.{note}", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)
