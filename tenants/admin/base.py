"""The admin half of the scoping mechanism: provider staff see every customer's rows.

``TenantQuerySet`` refuses unscoped queries, and the Django admin is the one place that
means to see everything, so it opens the scope explicitly (``all_customers()``) wherever
the admin queries a tenant-owned model: the changelist and change pages, foreign key and
many-to-many choices, list filters over related tenant models, autocomplete and inlines.

Provider staff pick the customer when they add a row (``TenantModel.customer`` is not
editable in customer-facing forms, so the admin form declares the field itself); it is
read-only afterwards, because moving a row to another customer would strand its related
rows. The form also refuses related rows of another customer (a machine in a group of a
different customer) with a clear error.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path

from ..models import Customer
from ..scoping import TenantModel


def _is_tenant_model(model) -> bool:
    return isinstance(model, type) and issubclass(model, TenantModel)


def tenant_label(obj) -> str:
    """A related row as provider staff need to tell it apart: "Web servers · acme"."""
    return f"{obj} · {obj.customer.slug}"


class TenantRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A list filter over a foreign key to a tenant-owned model, listing every customer's
    rows (the stock filter asks the model's default manager, which refuses)."""

    def field_choices(self, field, request, model_admin):
        queryset = field.related_model.objects.all_customers().select_related("customer")
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return [(obj.pk, tenant_label(obj)) for obj in queryset]


class TenantAdminForm(forms.ModelForm):
    """Adds the customer choice on the add page and checks related rows belong to it."""

    customer = forms.ModelChoiceField(
        queryset=Customer.objects.all(),
        help_text="The customer this row belongs to; it cannot change later.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None or "customer" in self.fields:
            return
        # On the change page only the row's own customer's related rows make sense.
        for field in self.fields.values():
            queryset = getattr(field, "queryset", None)
            if queryset is not None and _is_tenant_model(queryset.model):
                field.queryset = queryset.filter(customer_id=self.instance.customer_id)

    def _customer(self):
        if "customer" in self.fields:
            return self.cleaned_data.get("customer")
        return self.instance.customer if self.instance.customer_id else None

    def clean(self):
        data = super().clean()
        customer = self._customer()
        if customer is None:
            return data
        if "customer" in self.fields:
            self.instance.customer = customer
        for name, value in list(data.items()):
            if isinstance(value, TenantModel) and value.customer_id != customer.pk:
                self.add_error(
                    name,
                    f"“{value}” belongs to the customer {value.customer}, not to {customer}.",
                )
        return data

    def _get_validation_exclusions(self):
        # Unique constraints that include the customer (a group's name is unique per
        # customer) must be checked here, not left to the database as an IntegrityError.
        exclude = super()._get_validation_exclusions()
        if self.instance.customer_id is not None:
            exclude.discard("customer")
        return exclude


class TenantAdminMixin:
    """Opens the tenant scope for one admin class (ModelAdmin or inline)."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if _is_tenant_model(queryset.model):
            queryset = queryset.all_customers()
        return queryset

    def get_field_queryset(self, db, db_field, request):
        model = db_field.remote_field.model
        if not _is_tenant_model(model):
            return super().get_field_queryset(db, db_field, request)
        queryset = model.objects.using(db).all_customers().select_related("customer")
        related_admin = self.admin_site._registry.get(model)
        ordering = related_admin.get_ordering(request) if related_admin else None
        return queryset.order_by(*ordering) if ordering else queryset

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and _is_tenant_model(db_field.remote_field.model):
            field.label_from_instance = tenant_label
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and _is_tenant_model(db_field.remote_field.model):
            field.label_from_instance = tenant_label
        return field


class TenantAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Base ModelAdmin of every tenant-owned model."""

    form = TenantAdminForm
    list_select_related = ["customer"]

    def get_fields(self, request, obj=None):
        # The customer first: everything else on the page belongs to it.
        fields = [f for f in super().get_fields(request, obj) if f != "customer"]
        return ["customer", *fields]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and "customer" not in readonly:
            readonly.insert(0, "customer")
        return readonly

    def get_form(self, request, obj=None, change=False, **kwargs):
        # "customer" is a declared form field, not an editable model field: naming it in
        # the model form's fields would make Django refuse the form.
        if "fields" not in kwargs:
            kwargs["fields"] = admin.utils.flatten_fieldsets(self.get_fieldsets(request, obj))
        if kwargs["fields"] is not None:
            kwargs["fields"] = [f for f in kwargs["fields"] if f != "customer"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_list_filter(self, request):
        """Plain field names of foreign keys to tenant models get the opened filter."""
        filters = []
        for item in super().get_list_filter(request):
            if isinstance(item, str):
                try:
                    field = get_fields_from_path(self.model, item)[-1]
                except Exception:  # not a field path (e.g. a SimpleListFilter name)
                    field = None
                if (
                    field is not None
                    and field.is_relation
                    and _is_tenant_model(field.related_model)
                ):
                    item = (item, TenantRelatedFieldListFilter)
            filters.append(item)
        return filters

    def save_formset(self, request, form, formset, change):
        """New inline rows of tenant models belong to the parent's customer."""
        parent = form.instance
        customer = parent if isinstance(parent, Customer) else getattr(parent, "customer", None)
        for obj in formset.save(commit=False):
            if isinstance(obj, TenantModel) and obj.customer_id is None:
                obj.customer = customer
            obj.save()
        for obj in formset.deleted_objects:
            obj.delete()
        formset.save_m2m()


class TenantInline(TenantAdminMixin, admin.TabularInline):
    """Inline of a tenant-owned model; its rows take the parent's customer on save
    (see ``TenantAdmin.save_formset``)."""

    extra = 0
