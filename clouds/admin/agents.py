"""Provider admin of agents and their secrets.

Secrets are made only by the services: adding an enrollment token here runs
``enrollment_token_create`` and shows the token once in a message; credentials come from
enrollment alone, so their page is read-only with a revoke action. Agents are created by
enrolling, never by hand; an agent with an active job cannot be deleted (``agent_delete``).
Clouds, download links, their log and wizard drafts are in ``clouds.admin.clouds``.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from protection.models import ACTIVE_JOB_STATES, ReplicationJob
from tenants.admin.base import TenantAdmin, TenantAdminForm

from ..models import Agent, AgentCredential, AgentEvent, EnrollmentToken
from ..services import (
    agent_credential_revoke,
    agent_delete,
    credential_revoke,
    enrollment_token_create,
    enrollment_token_revoke,
)
from ..services.enrollment import MAX_EXPIRES_HOURS, MAX_USES
from .base import ViewOnlyMixin


@admin.register(Agent)
class AgentAdmin(TenantAdmin):
    list_display = [
        "display_id",
        "customer",
        "platform",
        "hostname",
        "version",
        "status",
        "last_seen_at",
        "debug_logging",
    ]
    list_filter = ["status", "platform", "debug_logging", "customer"]
    search_fields = ["=id", "hostname", "customer__slug", "customer__name"]
    list_select_related = ["customer", "cloud"]
    fields = [
        "display_id",
        "platform",
        "group",
        "cloud",
        "hostname",
        "version",
        "status",
        "status_message",
        "last_seen_at",
        "debug_logging",
        "enrolled_with",
        "created_at",
    ]
    readonly_fields = [
        "display_id",
        "platform",
        "cloud",
        "hostname",
        "version",
        "status",
        "status_message",
        "last_seen_at",
        "enrolled_with",
        "created_at",
    ]
    actions = ["revoke_credentials"]

    @admin.display(description="Agent", ordering="id")
    def display_id(self, obj):
        return obj.display_id

    def has_add_permission(self, request, obj=None):
        return False  # agents exist by enrolling

    def get_deleted_objects(self, objs, request):
        """An agent running a job is listed as protected: the admin refuses to delete it
        and says which job is in the way (``agent_delete`` refuses it too)."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        busy = (
            ReplicationJob.objects.all_customers()
            .filter(agent__in=[agent.pk for agent in objs], state__in=ACTIVE_JOB_STATES)
            .select_related("machine")
        )
        protected = [
            *protected,
            *(
                f"Job {job.pk} of {job.machine} is {job.state}: cancel the job first"
                for job in busy
            ),
        ]
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        agent_delete(obj)

    def delete_queryset(self, request, queryset):
        for agent in queryset:
            try:
                agent_delete(agent)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)

    @admin.action(description="Revoke credentials of selected agents")
    def revoke_credentials(self, request, queryset):
        count = sum(bool(agent_credential_revoke(agent)) for agent in queryset)
        self.message_user(
            request,
            f"Credentials of {count} agent(s) revoked; they must enroll again.",
            messages.SUCCESS,
        )


class EnrollmentTokenAddForm(TenantAdminForm):
    expires_hours = forms.IntegerField(
        min_value=1, max_value=MAX_EXPIRES_HOURS, initial=24, help_text="Valid for this long."
    )
    max_uses = forms.IntegerField(
        min_value=1, max_value=MAX_USES, initial=1, help_text="How many agents may enroll."
    )

    def clean(self):
        data = super().clean()
        cloud, platform = data.get("cloud"), data.get("platform")
        if cloud is not None and platform and cloud.platform != platform:
            self.add_error("cloud", f"{cloud} is a {cloud.get_platform_display()} platform.")
        return data


@admin.register(EnrollmentToken)
class EnrollmentTokenAdmin(TenantAdmin):
    list_display = [
        "prefix",
        "customer",
        "platform",
        "group",
        "cloud",
        "uses_display",
        "expires_at",
        "revoked_at",
        "created_at",
    ]
    list_filter = ["platform", "customer"]
    search_fields = ["prefix", "customer__slug", "customer__name"]
    list_select_related = ["customer", "group", "cloud"]
    actions = ["revoke"]
    add_fields = ["platform", "group", "cloud", "expires_hours", "max_uses"]
    change_fields = [
        "prefix",
        "platform",
        "group",
        "cloud",
        "expires_at",
        "max_uses",
        "uses",
        "revoked_at",
        "created_by",
        "created_at",
    ]

    @admin.display(description="Uses")
    def uses_display(self, obj):
        return f"{obj.uses} / {obj.max_uses}"

    def get_fields(self, request, obj=None):
        return ["customer", *(self.change_fields if obj else self.add_fields)]

    def get_readonly_fields(self, request, obj=None):
        # A token is what it was made as; only revocation changes it (an action).
        return ["customer", *self.change_fields] if obj else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = EnrollmentTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing is editable
        data = form.cleaned_data
        new = enrollment_token_create(
            data["customer"],
            platform=data["platform"],
            group=data.get("group"),
            cloud=data.get("cloud"),
            expires_hours=data["expires_hours"],
            max_uses=data["max_uses"],
            created_by=request.user,
        )
        obj.pk = new.token.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            f"Enrollment token created. It is shown this once: {new.text}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected enrollment tokens")
    def revoke(self, request, queryset):
        count = sum(enrollment_token_revoke(token) for token in queryset)
        self.message_user(request, f"{count} enrollment token(s) revoked.", messages.SUCCESS)


@admin.register(AgentCredential)
class AgentCredentialAdmin(ViewOnlyMixin, TenantAdmin):
    list_display = ["__str__", "agent", "customer", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["customer"]
    search_fields = ["prefix", "last4", "customer__slug", "=agent__id"]
    list_select_related = ["customer", "agent", "agent__cloud"]
    fields = ["agent", "prefix", "last4", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected credentials")
    def revoke(self, request, queryset):
        count = sum(credential_revoke(credential) for credential in queryset)
        self.message_user(request, f"{count} credential(s) revoked.", messages.SUCCESS)


@admin.register(AgentEvent)
class AgentEventAdmin(ViewOnlyMixin, TenantAdmin):
    list_display = ["occurred_at", "agent", "customer", "level", "short_message", "job"]
    list_filter = ["level", "customer"]
    search_fields = ["message", "customer__slug", "=agent__id"]
    list_select_related = ["customer", "agent", "agent__cloud", "job__machine"]
    fields = ["agent", "job", "level", "message", "occurred_at", "received_at"]
    date_hierarchy = "occurred_at"

    @admin.display(description="Message")
    def short_message(self, obj):
        return obj.message[:120]
