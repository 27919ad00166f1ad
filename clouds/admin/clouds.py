"""Provider admin of clouds, download links, their download log and wizard drafts.

A cloud's password is write-only here: the form has a password field that seals what is
typed (``clouds.crypto``) and is never filled in, so neither the clear password nor the
sealed text reaches a page. The admin saves without a connection check (staff may register a
platform the portal cannot reach yet); the customer's *Test connection* checks it later.
Download links are made by the wizard, Manage Clouds or ``create_download_link`` only: here
they are read-only (their secrets never shown) with a revoke action.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone

from tenants.admin.base import TenantAdmin, TenantAdminForm

from ..crypto import seal
from ..models import CLOUD_PLATFORMS, Cloud, DownloadEvent, DownloadLink, WizardDraft
from ..services.clouds import cloud_delete
from ..services.downloads import download_link_revoke
from .base import ViewOnlyMixin


class CloudAdminForm(TenantAdminForm):
    password = forms.CharField(
        required=False,
        strip=False,
        max_length=255,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored sealed and never shown. On an existing cloud, leave empty to keep "
        "the stored password.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "platform" in self.fields:
            self.fields["platform"].choices = [
                choice for choice in self.fields["platform"].choices if choice[0] in CLOUD_PLATFORMS
            ]
        if self.instance.pk is None:
            self.fields["password"].required = True

    def clean_name(self):
        return (self.cleaned_data.get("name") or "").strip()

    def clean(self):
        data = super().clean()
        customer, name = self._customer(), data.get("name")
        if customer is not None and name:
            same = Cloud.objects.for_customer(customer).filter(name__iexact=name)
            if self.instance.pk:
                same = same.exclude(pk=self.instance.pk)
            if same.exists():
                self.add_error("name", f"{customer} already has a cloud named “{name}”.")
        for field in ("disk_storage_threshold_percent", "free_space_threshold_percent"):
            value = data.get(field)
            if value is not None and not 0 <= value <= 100:
                self.add_error(field, "A percentage from 0 to 100 (0 – unlimited).")
        return data


class CheckListFilter(admin.SimpleListFilter):
    title = "last check"
    parameter_name = "check"

    def lookups(self, request, model_admin):
        return [("ok", "OK"), ("failed", "Failed"), ("never", "Never checked")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "ok":
            return queryset.filter(check_ok=True)
        if value == "failed":
            return queryset.filter(check_ok=False)
        if value == "never":
            return queryset.filter(checked_at__isnull=True)
        return queryset


@admin.register(Cloud)
class CloudAdmin(TenantAdmin):
    form = CloudAdminForm
    list_display = [
        "name",
        "customer",
        "platform",
        "endpoint",
        "login",
        "check_status",
        "checked_at",
    ]
    list_filter = ["platform", CheckListFilter, "customer"]
    search_fields = ["name", "endpoint", "customer__slug", "customer__name"]
    fields = [
        "name",
        "platform",
        "endpoint",
        "login",
        "password",
        "password_state",
        "tls_fingerprint",
        "enforce_quiesce",
        "cluster_level_discover",
        "on_replication_start",
        "on_replication_finish",
        "disk_storage_threshold_percent",
        "free_space_threshold_percent",
        "discovery_level",
        "checked_at",
        "check_ok",
        "check_message",
        "product",
        "inventory",
        "created_at",
        "updated_at",
    ]
    check_fields = ["checked_at", "check_ok", "check_message", "product", "inventory"]

    @admin.display(description="Last check", boolean=True)
    def check_status(self, obj):
        return obj.check_ok

    @admin.display(description="Stored password")
    def password_state(self, obj):
        return "Stored (sealed)" if obj and obj.has_password else "None"

    def get_readonly_fields(self, request, obj=None):
        readonly = ["password_state", *self.check_fields, "created_at", "updated_at"]
        if obj is not None:
            readonly = ["customer", "platform", *readonly]  # agents are built for it
        return readonly

    def save_model(self, request, obj, form, change):
        password = form.cleaned_data.get("password")
        if password:
            obj.password_sealed = seal(password)
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        cloud_delete(obj)

    def delete_queryset(self, request, queryset):
        for cloud in queryset:
            try:
                cloud_delete(cloud)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)


class LinkStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("live", "Live"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "live":
            return queryset.filter(revoked_at__isnull=True, expires_at__gt=now)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(DownloadLink)
class DownloadLinkAdmin(ViewOnlyMixin, TenantAdmin):
    list_display = [
        "prefix",
        "customer",
        "platform",
        "group",
        "cloud",
        "state",
        "downloads",
        "expires_at",
        "created_by",
        "created_at",
    ]
    list_filter = [LinkStateFilter, "enrollment_token__platform", "customer"]
    search_fields = ["prefix", "customer__slug", "customer__name", "enrollment_token__cloud__name"]
    list_select_related = [
        "customer",
        "enrollment_token__group",
        "enrollment_token__cloud",
        "created_by",
    ]
    readonly_fields = ["platform", "group", "cloud"]  # its enrollment token's
    # Never the sealed link text or the secret's hash.
    fields = [
        "prefix",
        "platform",
        "group",
        "cloud",
        "distro",
        "driver",
        "network",
        "server_url",
        "enrollment_token",
        "expires_at",
        "revoked_at",
        "downloads",
        "last_downloaded_at",
        "created_by",
        "created_at",
    ]
    actions = ["revoke"]

    @admin.display(description="State")
    def state(self, obj):
        return obj.refusal() or "Live"

    @admin.action(description="Revoke selected download links (and their enrollment tokens)")
    def revoke(self, request, queryset):
        count = sum(download_link_revoke(link) for link in queryset)
        self.message_user(request, f"{count} download link(s) revoked.", messages.SUCCESS)


@admin.register(DownloadEvent)
class DownloadEventAdmin(ViewOnlyMixin, TenantAdmin):
    list_display = ["at", "link", "customer", "served", "detail", "remote_addr", "size"]
    list_filter = ["served", "customer"]
    search_fields = ["link__prefix", "remote_addr", "user_agent", "customer__slug"]
    list_select_related = ["customer", "link"]
    fields = ["link", "served", "detail", "remote_addr", "user_agent", "size", "at"]
    date_hierarchy = "at"


@admin.register(WizardDraft)
class WizardDraftAdmin(ViewOnlyMixin, TenantAdmin):
    """Unfinished and finished wizard runs: to see where customers stop, and to delete."""

    list_display = ["pk", "customer", "user", "platform", "step", "updated_at", "finished_at"]
    list_filter = ["platform", "step", "customer"]
    search_fields = ["customer__slug", "user__username"]
    list_select_related = ["customer", "user"]
    fields = [
        "user",
        "platform",
        "step",
        "data",
        "group",
        "cloud",
        "link",
        "created_at",
        "updated_at",
        "finished_at",
    ]
