"""Replication settings pages for the three levels: customer, machine group, machine.

One form and one template serve all three; the views only pick the level object (scoped to
the customer, so another customer's group or machine is a 404), what it inherits, and hand
the typed values to ``protection.services.policy``. Everyone in the customer may look; only admins
change settings (the issue: "admin also manages settings").
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.views.generic import TemplateView

from tenants.models import Role
from tenants.views.base import CustomerMixin, TenantObjectMixin

from .. import inheritance
from ..forms.policy import PolicyForm
from ..models import Machine, MachineGroup
from ..services.policy import policy_reset, policy_update


class _PolicySettingsMixin:
    """GET shows the form and the effective table; POST saves, or resets with ``reset``.

    Listed before ``CustomerMixin`` in the views' bases so ``write_role`` here wins.
    """

    read_role = Role.VIEWER
    write_role = Role.ADMIN
    template_name = "protection/settings_form.html"
    level_kind = ""

    def get_level(self):
        raise NotImplementedError

    def level_url(self, level) -> str:
        """The page this level's settings belong to (breadcrumb and "back" link)."""
        raise NotImplementedError

    def settings_url(self, level) -> str:
        raise NotImplementedError

    def _form(self, data=None) -> PolicyForm:
        return PolicyForm(
            data,
            customer=self.customer,
            policy=inheritance.own_policy(self.level),
            inherited=inheritance.inherited_for(self.level),
            read_only=not self.membership.has_role(Role.ADMIN),
        )

    def get(self, request, *args, **kwargs):
        self.level = self.get_level()
        return self.render_to_response(self.get_context_data(form=self._form()))

    def post(self, request, *args, **kwargs):
        self.level = self.get_level()
        if "reset" in request.POST:
            try:
                policy_reset(self.customer, self.level)
            except ValidationError as error:
                context = self.get_context_data(form=self._form(), reset_errors=error.messages)
                return self.render_to_response(context)
            messages.success(request, "Settings reset: this level now inherits everything.")
            return redirect(self.settings_url(self.level))
        form = self._form(request.POST)
        if form.is_valid():
            try:
                policy_update(self.customer, self.level, form.policy_values())
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, "Replication settings saved.")
                return redirect(self.settings_url(self.level))
        return self.render_to_response(self.get_context_data(form=form))

    def get_context_data(self, **kwargs):
        level = self.level
        context = super().get_context_data(**kwargs)
        context.update(
            level=level,
            level_kind=self.level_kind,
            level_url=self.level_url(level),
            effective=self._effective(level),
            has_own_policy=inheritance.own_policy(level) is not None,
            overrides=inheritance.overrides_below(self.customer, level),
            can_edit=self.membership.has_role(Role.ADMIN),
            time_zone=self.customer.time_zone,
        )
        return context

    def _effective(self, level) -> inheritance.EffectiveSettings:
        if isinstance(level, Machine):
            return inheritance.effective_for_machine(level)
        if isinstance(level, MachineGroup):
            return inheritance.effective_for_group(level)
        return inheritance.effective_for_customer(level)


class CustomerSettingsView(_PolicySettingsMixin, CustomerMixin, TemplateView):
    """The customer-wide settings every group and machine inherits unless it sets its own."""

    level_kind = "customer"

    def get_level(self):
        return self.customer

    def level_url(self, level) -> str:
        return reverse("acura_portal:dashboard", args=[self.customer.slug])

    def settings_url(self, level) -> str:
        return reverse("protection:customer_settings", args=[self.customer.slug])


class GroupSettingsView(_PolicySettingsMixin, TenantObjectMixin, TemplateView):
    model = MachineGroup
    level_kind = "group"

    def get_level(self):
        return self.object

    def level_url(self, level) -> str:
        return reverse("protection:group_detail", args=[self.customer.slug, level.pk])

    def settings_url(self, level) -> str:
        return reverse("protection:group_settings", args=[self.customer.slug, level.pk])


class MachineSettingsView(_PolicySettingsMixin, TenantObjectMixin, TemplateView):
    model = Machine
    level_kind = "machine"

    def get_queryset(self):
        return super().get_queryset().select_related("group")

    def get_level(self):
        return self.object

    def level_url(self, level) -> str:
        return reverse("protection:machine_detail", args=[self.customer.slug, level.pk])

    def settings_url(self, level) -> str:
        return reverse("protection:machine_settings", args=[self.customer.slug, level.pk])
