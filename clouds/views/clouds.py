"""Manage Clouds: the customer's registered platforms, and what is done to one of them.

Viewers read; operators test a connection and download its agent (a download link is a
way to add agents, like the wizard); admins edit and delete. Every view resolves the cloud
from the customer of the URL first (``TenantObjectMixin``), so another customer's cloud is a
404 for every role and method. The writes are ``clouds.services``; a refusal becomes a
message or a form error and changes nothing. The stored password is never rendered back.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import TemplateView

from protection.models import Platform
from tenants.models import Role
from tenants.views.base import CustomerMixin, TenantObjectMixin

from ..crypto import SealError
from ..forms import CLOUD_FORMS
from ..models import CLOUD_PLATFORMS, Cloud
from ..selectors.clouds import (
    cloud_agents,
    cloud_live_links,
    cloud_scope_counts,
    cloud_search,
    customer_groups,
)
from ..services.clouds import CloudCheckFailed, cloud_delete, cloud_test, cloud_update
from ..services.downloads import download_link_create

PAGE_SIZE = 25
PLATFORM_CHOICES = [(value, Platform(value).label) for value in CLOUD_PLATFORMS]


class RolesContextMixin:
    """Tells templates which buttons the member's role allows."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_operate"] = self.membership.has_role(Role.OPERATOR)
        context["can_admin"] = self.membership.has_role(Role.ADMIN)
        return context


def error_messages(request, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


class CloudListView(RolesContextMixin, CustomerMixin, TemplateView):
    template_name = "clouds/cloud_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        q = self.request.GET.get("q", "").strip()[:200]
        platform = self.request.GET.get("platform", "")
        if platform not in CLOUD_PLATFORMS:
            platform = ""
        clouds = cloud_search(self.customer, q=q, platform=platform)
        page = Paginator(clouds, PAGE_SIZE).get_page(self.request.GET.get("page"))
        for cloud in page.object_list:
            cloud.scope_counts = cloud_scope_counts(cloud)
        filtered = bool(q or platform)
        context.update(
            q=q,
            platform=platform,
            platforms=PLATFORM_CHOICES,
            filters_active=filtered,
            page_obj=page,
            clouds=page.object_list,
            has_any_cloud=bool(page.paginator.count)
            or (filtered and cloud_search(self.customer).exists()),
            groups=list(customer_groups(self.customer)) if context["can_operate"] else [],
        )
        return context


class CloudObjectMixin(TenantObjectMixin):
    """The URL's cloud, from the customer's clouds only."""

    model = Cloud

    def list_url(self) -> str:
        return reverse("clouds:cloud_list", args=[self.customer.slug])


class CloudEditView(RolesContextMixin, CloudObjectMixin, TemplateView):
    """The platform's form. Every member sees the settings (disabled for all but admins);
    saving re-runs the connection check when what it depends on changed, and a failed check
    shows the connector's message and saves nothing. For an untrusted certificate the page
    offers "Trust this certificate", a checkbox that re-posts ``trust_fingerprint``."""

    template_name = "clouds/cloud_form.html"
    write_role = Role.ADMIN

    def form_class(self):
        return CLOUD_FORMS[self.object.platform]

    def get_context_data(self, form=None, failure: CloudCheckFailed | None = None, **kwargs):
        context = super().get_context_data(**kwargs)
        if form is None:
            form = self.form_class()(cloud=self.object, customer=self.customer)
            if not context["can_admin"]:
                for field in form.fields.values():
                    field.disabled = True
        offered = None
        if failure is not None and failure.kind == "tls" and failure.fingerprint:
            offered = failure.fingerprint
        context.update(
            cloud=self.object,
            cloud_form=form,
            failure=failure,
            missing=list(getattr(failure.error, "missing", None) or []) if failure else [],
            offered_fingerprint=offered,
            agent_count=cloud_agents(self.customer, self.object).count(),
        )
        return context

    def post(self, request, *args, **kwargs):
        cloud = self.object
        # An offered certificate is trusted by ticking the checkbox that stands in for the
        # hidden trust_fingerprint field (clouds/_cloud_fields.html).
        form = self.form_class()(request.POST, cloud=cloud, customer=self.customer)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        data = form.cleaned_data
        checked_before = cloud.checked_at
        try:
            cloud_update(
                cloud,
                name=data["name"],
                endpoint=data["endpoint"],
                login=data["login"],
                password=data["password"] or None,
                tls_fingerprint=data["trust_fingerprint"],
                options=form.options(),
            )
        except CloudCheckFailed as exc:
            form.add_error(None, exc.message)
            return self.render_to_response(self.get_context_data(form=form, failure=exc))
        except SealError as exc:
            form.add_error("password", str(exc))
            return self.render_to_response(self.get_context_data(form=form))
        except ValidationError as exc:
            for field, errors in exc.message_dict.items() if hasattr(exc, "error_dict") else []:
                form.add_error(field if field in form.fields else None, errors)
            if not hasattr(exc, "error_dict"):
                form.add_error(None, exc.messages)
            return self.render_to_response(self.get_context_data(form=form))
        text = f"Cloud {cloud.name} was saved."
        if cloud.checked_at != checked_before:
            text += f" The connection was checked: {cloud.check_message}"
        messages.success(request, text)
        return redirect(self.list_url())


class CloudTestView(CloudObjectMixin, View):
    """*Test connection*: check the stored connection now and record the outcome."""

    http_method_names = ["post"]
    write_role = Role.OPERATOR

    def post(self, request, *args, **kwargs):
        cloud = self.object
        try:
            result = cloud_test(cloud)
        except SealError as exc:
            messages.error(request, f"Cannot test {cloud.name}: {exc}")
            return redirect(self._next())
        if result.ok:
            product = f" ({result.product})" if result.product else ""
            messages.success(
                request, f"Connection to {cloud.name}{product} works. {result.message}"
            )
        else:
            messages.error(request, f"Connection to {cloud.name} failed: {result.message}")
        return redirect(self._next())

    def _next(self) -> str:
        target = self.request.POST.get("next", "")
        safe = url_has_allowed_host_and_scheme(
            target, allowed_hosts={self.request.get_host()}, require_https=self.request.is_secure()
        )
        return target if target and safe else self.list_url()


class CloudDownloadView(CloudObjectMixin, View):
    """*Download Replication Agent*: a new download link for this cloud's appliance (DHCP
    network settings, optionally a group for the discovered machines), then its page."""

    http_method_names = ["post"]
    write_role = Role.OPERATOR

    def post(self, request, *args, **kwargs):
        cloud = self.object
        group = None
        group_id = request.POST.get("group", "").strip()
        if group_id:
            if group_id.isdigit() and len(group_id) < 19:
                group = customer_groups(self.customer).filter(pk=int(group_id)).first()
            if group is None:
                messages.error(request, "Choose one of your groups.")
                return redirect(self.list_url())
        try:
            new = download_link_create(
                self.customer,
                platform=cloud.platform,
                server_url=request.build_absolute_uri("/").rstrip("/"),
                group=group,
                cloud=cloud,
                network={"mode": "dhcp"} if cloud.platform == Platform.VMWARE else None,
                created_by=request.user,
            )
        except ValidationError as exc:
            error_messages(request, exc)
            return redirect(self.list_url())
        messages.success(
            request,
            f"A download link for the {cloud.get_platform_display()} replication agent of "
            f"{cloud.name} was created. Download the agent below and follow the instructions.",
        )
        return redirect("clouds:link_detail", self.customer.slug, new.link.pk)


class CloudDeleteView(RolesContextMixin, CloudObjectMixin, TemplateView):
    """Confirm, then delete the cloud (refused while agents use it)."""

    template_name = "clouds/cloud_confirm_delete.html"
    read_role = Role.ADMIN
    write_role = Role.ADMIN

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        agents = cloud_agents(self.customer, self.object)
        context.update(
            cloud=self.object,
            agents=list(agents[:20]),
            agent_count=agents.count(),
            live_link_count=cloud_live_links(self.customer, self.object).count(),
        )
        return context

    def post(self, request, *args, **kwargs):
        cloud = self.object
        name = cloud.name
        try:
            cloud_delete(cloud)
        except ValidationError as exc:
            error_messages(request, exc)
            return redirect("clouds:cloud_delete", self.customer.slug, cloud.pk)
        messages.success(
            request,
            f"Cloud {name} was deleted; its download links no longer serve the agent.",
        )
        return redirect(self.list_url())
