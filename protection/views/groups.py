"""Machine group pages: list, create, edit, detail (its machines), delete with a move."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import DetailView, FormView, ListView

from tenants.views_base import CustomerMixin, TenantObjectMixin

from .. import services
from ..forms import GroupDeleteForm, MachineGroupForm
from ..models import MachineGroup
from ..selectors import groups_of
from .machines import MachineTableMixin, ObjectFirstMixin, OperatorContextMixin


class GroupListView(OperatorContextMixin, CustomerMixin, ListView):
    template_name = "protection/group_list.html"
    context_object_name = "groups"
    paginate_by = 50

    def get_queryset(self):
        return groups_of(self.customer).order_by("name", "pk")


class GroupObjectMixin:
    """Loads the URL's group from the customer's groups only: a foreign id is a 404.

    Placed after ``CustomerMixin`` so the group is looked up before the HTTP method is
    dispatched (a foreign id is a 404 for every method, never a 405).
    """

    def dispatch(self, request, *args, **kwargs):
        self.get_group()
        return super().dispatch(request, *args, **kwargs)

    def get_group(self) -> MachineGroup:
        if not hasattr(self, "group"):
            self.group = get_object_or_404(
                MachineGroup.objects.for_customer(self.customer), pk=self.kwargs["pk"]
            )
        return self.group

    def get_context_data(self, **kwargs):
        kwargs.setdefault("group", self.get_group())
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
        return services.group_create(
            self.customer, name=data["name"], description=data["description"]
        )


class GroupUpdateView(
    GroupFormMixin, OperatorContextMixin, CustomerMixin, GroupObjectMixin, FormView
):
    success_message = "Saved group {name}."

    def get_initial(self):
        group = self.get_group()
        return {"name": group.name, "description": group.description}

    def save(self, data) -> MachineGroup:
        return services.group_update(
            self.customer, self.get_group(), name=data["name"], description=data["description"]
        )


class GroupDetailView(MachineTableMixin, TenantObjectMixin, ObjectFirstMixin, DetailView):
    """A group and its machines, with the same table and actions as the machine list."""

    model = MachineGroup
    template_name = "protection/group_detail.html"
    context_object_name = "group"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.machine_table_context(group=self.object))
        return context


class GroupDeleteView(OperatorContextMixin, CustomerMixin, GroupObjectMixin, FormView):
    """Deleting an empty group only confirms; a non-empty one asks where machines go."""

    form_class = GroupDeleteForm
    template_name = "protection/group_confirm_delete.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "group": self.get_group()}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["machine_count"] = self.get_group().machines.count()
        return context

    def form_valid(self, form):
        group = self.get_group()
        name = group.name
        move_to = form.cleaned_data["move_to"]
        try:
            moved = services.group_delete(self.customer, group, move_to)
        except ValidationError as exc:
            form.add_error(None, exc)
            return self.form_invalid(form)
        text = f"Deleted group {name}."
        if moved:
            where = f"group {move_to.name}" if move_to else "no group"
            text += f" Moved {moved} machine{'' if moved == 1 else 's'} to {where}."
        messages.success(self.request, text)
        return redirect("protection:group_list", self.customer.slug)
