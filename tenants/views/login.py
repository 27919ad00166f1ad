"""Login, logout, and the customer chooser a user with several customers lands on."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import LoginView, LogoutView
from django.shortcuts import redirect
from django.views.generic import TemplateView

from ..forms.users import PortalAuthenticationForm
from ..selectors import memberships_of


class PortalLoginView(LoginView):
    template_name = "tenants/login.html"
    form_class = PortalAuthenticationForm
    redirect_authenticated_user = True


class PortalLogoutView(LogoutView):
    pass


class HomeView(LoginRequiredMixin, TemplateView):
    """Sends a one-customer user straight to its dashboard; others choose (the switcher)."""

    template_name = "tenants/home.html"

    def get(self, request, *args, **kwargs):
        memberships = list(memberships_of(request.user))
        if len(memberships) == 1:
            return redirect("acura_portal:dashboard", memberships[0].customer.slug)
        return self.render_to_response({"memberships": memberships})
