"""Machine group pages: list, create, edit, detail (its machines), delete with a move."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View
from django.views.generic import DetailView, FormView, ListView

from tenants.views.base import CustomerMixin, TenantObjectMixin

from ..forms.machines import GroupDeleteForm, MachineGroupForm
from ..models import MachineGroup
from ..selectors import groups_of
from ..services import machines as machine_services
from ..services.jobs import machines_replicate_now
from .machines import MachineTableMixin, OperatorContextMixin


class GroupListView(OperatorContextMixin, CustomerMixin, ListView):
    template_name = "protection/group_list.html"
    context_object_name = "groups"
    paginate_by = 50

    def get_queryset(self):
        return groups_of(self.customer).order_by("name", "pk")


class GroupObjectMixin(TenantObjectMixin):
    """The URL's group, from the customer's groups only (``TenantObjectMixin``)."""

    model = MachineGroup

    def get_context_data(self, **kwargs):
        kwargs.setdefault("group", self.object)
        return super().get_context_data(**kwargs)


class GroupFormMixin:
    """Create (no ``pk`` in the URL) or edit a group; the service enforces the rules and
    its ``ValidationError`` (e.g. a duplicate name) becomes a form error."""

    form_class = MachineGroupForm
    template_name = "protection/group_form.html"

    def save(self, data) -> MachineGroup:
        raise NotImplementedError

    def form_valid(self, form):
        try:
            group = self.save(form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
            return self.form_invalid(form)
        messages.success(self.request, self.success_message.format(name=group.name))
        return redirect("protection:group_detail", self.customer.slug, group.pk)


class GroupCreateView(GroupFormMixin, OperatorContextMixin, CustomerMixin, FormView):
    success_message = "Created group {name}."

    def save(self, data) -> MachineGroup:
        return machine_services.group_create(
            self.customer, name=data["name"], description=data["description"]
        )


class GroupUpdateView(GroupFormMixin, OperatorContextMixin, GroupObjectMixin, FormView):
    success_message = "Saved group {name}."

    def get_initial(self):
        group = self.object
        return {"name": group.name, "description": group.description}

    def save(self, data) -> MachineGroup:
        return machine_services.group_update(
            self.customer, self.object, name=data["name"], description=data["description"]
        )


class GroupDetailView(MachineTableMixin, TenantObjectMixin, DetailView):
    """A group and its machines, with the same table and actions as the machine list."""

    model = MachineGroup
    template_name = "protection/group_detail.html"
    context_object_name = "group"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.machine_table_context(group=self.object))
        return context


class GroupReplicateView(TenantObjectMixin, View):
    """*Replicate now* for every machine of the group (operators and admins): protected
    machines get a manual job; the others are counted as skipped, with the reason."""

    model = MachineGroup
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        group = self.object
        machines = group.machines.select_related("agent").order_by("name", "pk")
        result = machines_replicate_now(self.customer, machines, requested_by=request.user)
        messages.success(request, f"{group.name}: {result.message()}")
        return redirect(reverse("protection:group_detail", args=[self.customer.slug, group.pk]))


class GroupDeleteView(OperatorContextMixin, GroupObjectMixin, FormView):
    """Deleting an empty group only confirms; a non-empty one asks where machines go."""

    form_class = GroupDeleteForm
    template_name = "protection/group_confirm_delete.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "group": self.object}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["machine_count"] = self.object.machines.count()
        return context

    def form_valid(self, form):
        group = self.object
        name = group.name
        move_to = form.cleaned_data["move_to"]
        try:
            moved = machine_services.group_delete(self.customer, group, move_to)
        except ValidationError as exc:
            form.add_error(None, exc)
            return self.form_invalid(form)
        text = f"Deleted group {name}."
        if moved:
            where = f"group {move_to.name}" if move_to else "no group"
            text += f" Moved {moved} machine{'' if moved == 1 else 's'} to {where}."
        messages.success(self.request, text)
        return redirect("protection:group_list", self.customer.slug)
