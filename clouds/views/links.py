"""Download links: the customer's links, one link's URL, downloads and enrolled agents, and
revoking a link.

A live link's URL is a secret that lets whoever holds it enroll agents into the customer,
so only members who may create links (operators and admins) see it again; viewers see
everything else. Links of another customer are a 404 (``TenantObjectMixin``).
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.views import View
from django.views.generic import TemplateView

from tenants.models import Role
from tenants.views.base import CustomerMixin, TenantObjectMixin

from ..crypto import SealError
from ..instructions import instructions_context
from ..models import DownloadLink
from ..packages import package_filename
from ..selectors.downloads import download_link_agents, download_link_events, download_link_search
from ..services.downloads import download_link_revoke, package_spec
from .clouds import RolesContextMixin

PAGE_SIZE = 50
EVENT_PAGE_SIZE = 50
STATE_FILTERS = [("live", "Live"), ("all", "All")]


class LinkListView(RolesContextMixin, CustomerMixin, TemplateView):
    template_name = "clouds/link_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        state = self.request.GET.get("state", "live")
        if state not in dict(STATE_FILTERS):
            state = "live"
        links = download_link_search(self.customer, state="" if state == "all" else state)
        page = Paginator(links, PAGE_SIZE).get_page(self.request.GET.get("page"))
        context.update(
            state=state,
            states=STATE_FILTERS,
            page_obj=page,
            links=page.object_list,
            has_any_link=bool(page.paginator.count)
            or (state != "all" and download_link_search(self.customer).exists()),
        )
        return context


class LinkObjectMixin(TenantObjectMixin):
    """The URL's download link, from the customer's links only (with its ``state``)."""

    model = DownloadLink

    def get_queryset(self):
        return download_link_search(self.customer)


class LinkDetailView(RolesContextMixin, LinkObjectMixin, TemplateView):
    template_name = "clouds/link_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        link = self.object
        show_url, url_error = link.state == "live" and context["can_operate"], ""
        if show_url:
            try:
                # The link, the curl command and the platform's protection instructions.
                context.update(instructions_context(link))
            except SealError as exc:
                show_url, url_error = False, str(exc)
        events = download_link_events(self.customer, link)
        context.update(
            link=link,
            token=link.enrollment_token,
            filename=package_filename(package_spec(link)),
            show_url=show_url,
            url_error=url_error,
            agents=list(download_link_agents(self.customer, link)[:50]),
            events_page=Paginator(events, EVENT_PAGE_SIZE).get_page(
                self.request.GET.get("events_page")
            ),
        )
        return context


class LinkRevokeView(LinkObjectMixin, View):
    """*Revoke*: the link serves nothing more and its package's enrollment token enrolls no
    more agents; agents that already enrolled keep their credentials."""

    http_method_names = ["post"]
    write_role = Role.OPERATOR

    def post(self, request, *args, **kwargs):
        link = self.object
        if download_link_revoke(link):
            messages.success(
                request,
                f"Download link {link.prefix} was revoked: it serves nothing more and its "
                f"package can no longer enroll agents. Agents already enrolled keep working.",
            )
        else:
            messages.info(request, f"Download link {link.prefix} was already revoked.")
        return redirect("clouds:link_detail", self.customer.slug, link.pk)
