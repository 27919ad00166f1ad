"""Agent pages: the customer's agents, one agent's credentials, events and machines, and
what an admin does to an agent (revoke its credential, debug logging, delete it).

Viewers read, admins write. Every view resolves the agent from the customer of the URL
first (``TenantObjectMixin``), so another customer's agent is a 404 for every role and
method. The writes are the services of ``clouds.services``; their refusals become messages
and change nothing.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from tenants.models import Role
from tenants.views.base import CustomerMixin, TenantObjectMixin

from ..models import Agent, AgentStatus, EventLevel
from ..selectors.agents import (
    LEVELS,
    agent_active_jobs,
    agent_credentials,
    agent_events,
    agent_machines,
    agent_search,
)
from ..services import agent_credential_revoke, agent_delete, agent_set_debug_logging

PAGE_SIZE = 50
EVENT_PAGE_SIZE = 50
MACHINE_PAGE_SIZE = 25


class AdminContextMixin:
    """Tells templates whether to show the buttons that need the admin role."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_admin"] = self.membership.has_role(Role.ADMIN)
        return context


class AgentListView(CustomerMixin, TemplateView):
    template_name = "clouds/agent_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        q = self.request.GET.get("q", "").strip()[:200]
        status = self.request.GET.get("status", "")
        if status not in AgentStatus.values:
            status = ""
        agents = agent_search(self.customer, q=q, status=status)
        page = Paginator(agents, PAGE_SIZE).get_page(self.request.GET.get("page"))
        filtered = bool(q or status)
        context.update(
            q=q,
            status=status,
            statuses=AgentStatus.choices,
            filters_active=filtered,
            page_obj=page,
            agents=page.object_list,
            has_any_agent=bool(page.paginator.count)
            or (filtered and agent_search(self.customer).exists()),
        )
        return context


class AgentObjectMixin(TenantObjectMixin):
    """The URL's agent, from the customer's agents only."""

    model = Agent

    def get_queryset(self):
        return super().get_queryset().select_related("group", "cloud")

    def detail_url(self) -> str:
        return reverse("clouds:agent_detail", args=[self.customer.slug, self.object.pk])


class AgentDetailView(AdminContextMixin, AgentObjectMixin, TemplateView):
    template_name = "clouds/agent_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        agent, get = self.object, self.request.GET
        level = get.get("level", "")
        if level not in LEVELS:
            level = ""
        events = agent_events(self.customer, agent, level=level)
        machines = agent_machines(self.customer, agent)
        context.update(
            agent=agent,
            credentials=list(agent_credentials(self.customer, agent)),
            level=level,
            levels=EventLevel.choices,
            events_page=Paginator(events, EVENT_PAGE_SIZE).get_page(get.get("events_page")),
            machines_page=Paginator(machines, MACHINE_PAGE_SIZE).get_page(get.get("machines_page")),
            active_jobs=agent_active_jobs(self.customer, agent),
        )
        return context


class AgentCredentialRevokeView(AgentObjectMixin, View):
    """*Revoke credential*: the agent's next request is refused (401) until it is enrolled
    again with a new token."""

    http_method_names = ["post"]
    write_role = Role.ADMIN

    def post(self, request, *args, **kwargs):
        agent = self.object
        if agent_credential_revoke(agent):
            messages.success(
                request,
                f"The credential of agent {agent.display_id} was revoked: the agent can no "
                f"longer connect. Enroll it again with a new enrollment token to bring it back.",
            )
        else:
            messages.info(request, f"Agent {agent.display_id} has no active credential.")
        return redirect(self.detail_url())


class AgentDebugLoggingView(AgentObjectMixin, View):
    """POST ``enabled=1`` switches the agent's debug logs on, ``enabled=0`` off."""

    http_method_names = ["post"]
    write_role = Role.ADMIN

    def post(self, request, *args, **kwargs):
        agent = self.object
        value = request.POST.get("enabled", "")
        if value not in ("0", "1"):
            messages.error(request, "Choose enabled=1 (debug logging on) or enabled=0 (off).")
            return redirect(self.detail_url())
        agent_set_debug_logging(agent, value == "1")
        if agent.debug_logging:
            messages.success(
                request,
                f"Debug logging is on for agent {agent.display_id}: it sends debug-level logs "
                f"from its next heartbeat. Switch it off when you are done.",
            )
        else:
            messages.success(request, f"Debug logging is off for agent {agent.display_id}.")
        return redirect(self.detail_url())


class AgentDeleteView(AdminContextMixin, AgentObjectMixin, TemplateView):
    """Confirm, then delete the agent (refused while one of its jobs is active)."""

    template_name = "clouds/agent_confirm_delete.html"
    read_role = Role.ADMIN
    write_role = Role.ADMIN

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            agent=self.object,
            machine_count=agent_machines(self.customer, self.object).count(),
            active_jobs=agent_active_jobs(self.customer, self.object),
        )
        return context

    def post(self, request, *args, **kwargs):
        agent = self.object
        name = agent.display_id
        try:
            agent_delete(agent)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return redirect(self.detail_url())
        messages.success(
            request,
            f"Agent {name} was deleted. Its machines and their snapshots stay; they need an "
            f"agent again before they can replicate.",
        )
        return redirect("clouds:agent_list", self.customer.slug)
