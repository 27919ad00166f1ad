"""The Register new platform wizard: four server-rendered steps over a ``WizardDraft``.

Step 1 picks the platform, step 2 shows its requirements, step 3 takes the agent options
(group, cloud, network or Linux package), step 4 gives the download link and the
instructions. Each run's id is in the URL and its state in the database, so refresh, Back
and two tabs all work; steps not reached yet redirect to the furthest one reached. Views
only bind forms and call ``clouds.services.wizard``.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from protection.models import MachineGroup, Platform
from tenants.models import Role
from tenants.views.base import CustomerMixin, TenantObjectMixin

from ..forms import (
    CLOUD_FORMS,
    CloudChoiceForm,
    GroupChoiceForm,
    LinuxOptionsForm,
    NetworkForm,
    PlatformForm,
)
from ..instructions import instructions_context
from ..models import WizardDraft
from ..requirements import REQUIREMENTS, SUPPORTED_KERNELS
from ..services.clouds import CloudCheckFailed
from ..services.wizard import (
    LAST_STEP,
    draft_accept_requirements,
    draft_discard,
    draft_finish,
    draft_renew_link,
    draft_set_options,
    draft_set_platform,
    draft_start,
    drafts_open,
)

STEPS = [(1, "Platform"), (2, "Requirements"), (3, "Agent options"), (4, "Protection instructions")]
PLATFORM_BLURBS = {
    "vmware": "An agent appliance on each ESXi host replicates the cluster's VMs through "
    "VMware snapshots and CBT.",
    "ovirt": "An agent appliance per cluster, host, data center or cloud replicates VMs "
    "through oVirt snapshots.",
    "linux": "An agent installed on each Linux machine (deb or rpm package).",
    "windows": "An agent installed on each Windows machine (MSI installer, VSS snapshots).",
}


def server_url(request) -> str:
    """The portal's URL as this customer reaches it: what the packaged agent will call."""
    return request.build_absolute_uri("/").rstrip("/")


def _group_from_query(customer, value):
    if not str(value or "").isdigit():
        return None
    return MachineGroup.objects.for_customer(customer).filter(pk=int(value)).first()


class WizardMixin:
    def platform_choices(self):
        return [(value, label, PLATFORM_BLURBS[value]) for value, label in Platform.choices]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["steps"] = STEPS
        context["can_operate"] = self.membership.has_role(Role.OPERATOR)
        context["platform_choices"] = self.platform_choices()
        return context


class WizardStartView(WizardMixin, CustomerMixin, TemplateView):
    """Step 1 of a new run (with the unfinished runs to resume or discard)."""

    template_name = "clouds/wizard_platform.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        group = _group_from_query(self.customer, self.request.GET.get("group"))
        context.setdefault("form", PlatformForm())
        context.update(
            step=1,
            draft=None,
            preselected_group=group,
            open_drafts=drafts_open(self.customer, self.request.user)[:10],
        )
        return context

    def post(self, request, *args, **kwargs):
        form = PlatformForm(request.POST)
        group = _group_from_query(self.customer, request.POST.get("group"))
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        draft = draft_start(
            self.customer, request.user, platform=form.cleaned_data["platform"], group=group
        )
        return redirect("clouds:wizard_step", self.customer.slug, draft.pk, 2)


class DraftMixin(TenantObjectMixin):
    """The URL's run, from this user's runs in this customer only (others are a 404)."""

    model = WizardDraft

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .filter(user=self.request.user)
            .select_related("group", "cloud", "link", "link__enrollment_token")
        )


class WizardStepView(WizardMixin, DraftMixin, TemplateView):
    templates = {
        1: "clouds/wizard_platform.html",
        2: "clouds/wizard_requirements.html",
        3: "clouds/wizard_options.html",
        4: "clouds/wizard_instructions.html",
    }

    def get(self, request, *args, **kwargs):
        redirect_to = self._guard()
        return redirect_to or super().get(request, *args, **kwargs)

    def _guard(self):
        """Steps beyond the furthest reached (or a finished run's middle) go to that step."""
        step = self.kwargs["step"]
        if not 1 <= step <= LAST_STEP:
            return redirect("clouds:wizard_step", self.customer.slug, self.object.pk, 1)
        if step > self.object.step:
            return redirect(
                "clouds:wizard_step", self.customer.slug, self.object.pk, self.object.step
            )
        if self.object.finished_at and step != LAST_STEP:
            messages.info(
                self.request, "This registration is finished; start a new one to change it."
            )
            return redirect("clouds:wizard_step", self.customer.slug, self.object.pk, LAST_STEP)
        return None

    def get_template_names(self):
        return [self.templates[self.kwargs["step"]]]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        draft, step = self.object, self.kwargs["step"]
        context.update(step=step, draft=draft, platform=draft.platform)
        if draft.platform:
            context["platform_label"] = Platform(draft.platform).label
        if step == 1:
            context.setdefault("form", PlatformForm(initial={"platform": draft.platform}))
        elif step == 2:
            context["requirements"] = REQUIREMENTS[draft.platform]
        elif step == 3:
            context.update(self.option_forms() if "forms" not in kwargs else {})
            context["supported_kernels"] = SUPPORTED_KERNELS
        elif step == 4:
            context.update(instructions_context(draft.link))
        return context

    # -- step 3 forms ------------------------------------------------------------------------
    def option_forms(self, data=None) -> dict:
        draft, customer = self.object, self.customer
        platform = draft.platform
        forms = {
            "group_form": GroupChoiceForm(
                data, customer=customer, initial={"group": draft.group_id}
            )
        }
        if platform in CLOUD_FORMS:
            forms["cloud_choice_form"] = CloudChoiceForm(
                data,
                customer=customer,
                platform=platform,
                initial={
                    "cloud": draft.cloud_id,
                    **({"cloud_mode": "registered"} if draft.cloud_id else {}),
                },
            )
            forms["cloud_form"] = CLOUD_FORMS[platform](data, customer=customer)
        if platform == "vmware":
            forms["network_form"] = NetworkForm(data, initial=self._network_initial())
        if platform == "linux":
            forms["linux_form"] = LinuxOptionsForm(
                data,
                initial={"distro": draft.data.get("distro"), "driver": draft.data.get("driver")},
            )
        return forms

    def _network_initial(self) -> dict:
        network = dict(self.object.data.get("network") or {"mode": "dhcp"})
        if isinstance(network.get("dns"), list):
            network["dns"] = ", ".join(network["dns"])
        return network

    def _forms_valid(self, forms: dict) -> bool:
        names = ["group_form", "cloud_choice_form", "network_form", "linux_form"]
        valid = all(forms[name].is_valid() for name in names if name in forms)
        choice = forms.get("cloud_choice_form")
        if choice is not None and choice.is_valid() and choice.cleaned_data["cloud_mode"] == "new":
            valid = forms["cloud_form"].is_valid() and valid
        return valid

    def _set_options(self, forms: dict) -> None:
        group = forms["group_form"].cleaned_data
        kwargs = {
            "server_url": server_url(self.request),
            "group": group.get("group"),
            "new_group": group.get("new_group", ""),
            "user": self.request.user,
        }
        if "cloud_choice_form" in forms:
            choice = forms["cloud_choice_form"].cleaned_data
            if choice["cloud_mode"] == "new":
                cloud = forms["cloud_form"].cleaned_data
                kwargs["new_cloud"] = {
                    "name": cloud["name"],
                    "endpoint": cloud["endpoint"],
                    "login": cloud["login"],
                    "password": cloud["password"],
                    "tls_fingerprint": cloud.get("trust_fingerprint", ""),
                    "options": forms["cloud_form"].options(),
                }
            else:
                kwargs["cloud"] = choice["cloud"]
        if "network_form" in forms:
            kwargs["network"] = forms["network_form"].cleaned_data["network"]
        if "linux_form" in forms:
            kwargs.update(forms["linux_form"].cleaned_data)
        draft_set_options(self.object, **kwargs)

    @staticmethod
    def _spread_errors(forms: dict, error: ValidationError) -> None:
        """Put a service's field errors on the form that has the field."""
        if not hasattr(error, "error_dict"):
            forms["group_form"].add_error(None, error)
            return
        for field, errors in error.message_dict.items():
            target = next(
                (f for f in forms.values() if field in f.fields),
                forms.get("cloud_form") if field in ("name", "endpoint", "login") else None,
            )
            (target or forms["group_form"]).add_error(
                field if target is not None and field in target.fields else None, errors
            )

    # -- posts -------------------------------------------------------------------------------
    def post(self, request, *args, **kwargs):
        redirect_to = self._guard()
        if redirect_to:
            return redirect_to
        step = self.kwargs["step"]
        handler = {1: self.post_platform, 2: self.post_requirements, 3: self.post_options}.get(
            step, self.post_instructions
        )
        return handler()

    def _next(self, step: int):
        return redirect("clouds:wizard_step", self.customer.slug, self.object.pk, step)

    def post_platform(self):
        form = PlatformForm(self.request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        draft_set_platform(self.object, form.cleaned_data["platform"])
        return self._next(2)

    def post_requirements(self):
        draft_accept_requirements(self.object)
        return self._next(3)

    def post_options(self):
        forms = self.option_forms(self.request.POST)
        offered = None
        if self._forms_valid(forms):
            try:
                self._set_options(forms)
                return self._next(4)
            except CloudCheckFailed as exc:
                forms["cloud_form"].add_error(None, exc.message)
                offered = exc.fingerprint if exc.kind == "tls" else None
            except ValidationError as exc:
                self._spread_errors(forms, exc)
        context = self.get_context_data(forms=True, **forms)
        context["offered_fingerprint"] = offered
        return self.render_to_response(context)

    def post_instructions(self):
        action = self.request.POST.get("action")
        try:
            if action == "renew":
                draft_renew_link(
                    self.object, server_url=server_url(self.request), user=self.request.user
                )
                messages.success(
                    self.request, "A new download link was made; the old one no longer works."
                )
                return self._next(4)
            draft_finish(self.object)
        except ValidationError as exc:
            messages.error(self.request, " ".join(exc.messages))
            return self._next(self.object.step)
        messages.success(
            self.request,
            "Machines will be shown in this group a few minutes after the agent is installed, "
            "with the Unprotected status. Select them and use Actions → Start Protection.",
        )
        if self.object.group_id:
            return redirect("protection:group_detail", self.customer.slug, self.object.group_id)
        return redirect("protection:machine_list", self.customer.slug)


class WizardDiscardView(DraftMixin, View):
    def post(self, request, *args, **kwargs):
        draft_discard(self.object)
        messages.success(request, "The unfinished registration was discarded.")
        return redirect(reverse("clouds:wizard_start", args=[self.customer.slug]))
