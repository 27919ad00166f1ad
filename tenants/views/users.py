"""The customer's users page: members and their roles, managed by the customer's admins.

Everybody in the customer may see who else is in it; only admins add, change and remove
members. Memberships are not ``TenantModel`` rows, so every lookup here filters by the
URL's customer itself (``customer_members()``, ``get_object()``): another customer's
membership id is a 404 like any unknown id.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import FormView, ListView, TemplateView

from ..forms.users import MembershipAddForm, MembershipRoleForm, add_service_errors
from ..models import ROLE_HELP, Membership, Role
from ..selectors import customer_members
from ..services import membership_add, membership_change_role, membership_remove
from .base import CustomerMixin, TenantObjectMixin


class _AdminOnlyMixin(CustomerMixin):
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    # Plain HTML forms: FormView would otherwise also take PUT as a POST.
    http_method_names = ["get", "post", "head", "options"]

    def list_url(self) -> str:
        return reverse("tenants:membership_list", args=[self.customer.slug])


class _MembershipObjectMixin(TenantObjectMixin, _AdminOnlyMixin):
    """``self.object``: a membership of the URL's customer, else 404 (``TenantObjectMixin``
    loads it before the role check, so a stranger gets 404 and a viewer 403)."""

    def get_queryset(self):
        return Membership.objects.filter(customer=self.customer).select_related("user")

    def get_context_data(self, **kwargs):
        return super().get_context_data(membership_obj=self.object, **kwargs)


class MembershipListView(CustomerMixin, ListView):
    """Who is in the customer, with which role: visible to every member."""

    template_name = "tenants/membership_list.html"
    context_object_name = "members"
    paginate_by = 50

    def get_queryset(self):
        return customer_members(self.customer)

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            can_manage=self.membership.has_role(Role.ADMIN),
            role_help=[(role, ROLE_HELP[role]) for role in Role],
            **kwargs,
        )


@method_decorator(never_cache, name="dispatch")
class MembershipCreateView(_AdminOnlyMixin, FormView):
    """Add an existing login or create a new one. A generated password is rendered in
    this response only (no redirect, no message storage), so it is shown exactly once."""

    template_name = "tenants/membership_form.html"
    form_class = MembershipAddForm

    def form_valid(self, form):
        try:
            added = membership_add(
                self.customer,
                role=form.cleaned_data["role"],
                user=form.cleaned_data.get("user") if form.new_user() is None else None,
                new_user=form.new_user(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        username = added.membership.user.get_username()
        role = added.membership.get_role_display()
        if added.generated_password:
            return self.response_class(
                request=self.request,
                template=["tenants/membership_password.html"],
                context=self.get_context_data(added=added, password=added.generated_password),
                using=self.template_engine,
            )
        created = "created and added" if added.user_created else "added"
        messages.success(self.request, f"{username} was {created} as {role}.")
        return redirect(self.list_url())


class MembershipUpdateView(_MembershipObjectMixin, FormView):
    """Change a member's role."""

    template_name = "tenants/membership_edit.html"
    form_class = MembershipRoleForm

    def get_initial(self):
        return {"role": self.object.role}

    def form_valid(self, form):
        try:
            membership_change_role(self.customer, self.object, form.cleaned_data["role"])
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        messages.success(
            self.request,
            f"{self.object.user.get_username()} is now {self.object.get_role_display()}.",
        )
        # Also right for admins who demoted themselves: the list stays visible to them.
        return redirect(self.list_url())


class MembershipDeleteView(_MembershipObjectMixin, TemplateView):
    """Confirm, then take the user out of the customer (the login itself stays)."""

    template_name = "tenants/membership_confirm_delete.html"

    def post(self, request, *args, **kwargs):
        username = self.object.user.get_username()
        leaving = self.object.user_id == request.user.pk
        try:
            membership_remove(self.customer, self.object)
        except ValidationError as exc:
            context = self.get_context_data(errors=exc.messages)
            return self.render_to_response(context, status=400)
        if leaving:
            messages.success(request, f"You left {self.customer}.")
            return redirect("tenants:home")
        messages.success(request, f"{username} no longer has access to {self.customer}.")
        return redirect(self.list_url())
