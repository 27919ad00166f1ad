"""The customer dashboard: a summary across apps (NetBox keeps its home view here too)."""

from django.views.generic import TemplateView

from clouds.selectors.agents import agent_summary
from protection.selectors import dashboard_summary, job_summary
from storage.selectors import customer_usage
from tenants.views.base import CustomerMixin


class DashboardView(CustomerMixin, TemplateView):
    template_name = "acura_portal/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["summary"] = dashboard_summary(self.customer)
        context["agents"] = agent_summary(self.customer)
        context["jobs"] = job_summary(self.customer)
        context["storage"] = customer_usage(self.customer)
        return context
