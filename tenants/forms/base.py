"""Scoped forms: choice fields over tenant-owned models only offer the form's customer's rows."""

from django import forms

from ..scoping import TenantModel


def scope_choice_fields(form: forms.BaseForm, customer) -> None:
    """Narrow every model choice field over a tenant-owned model to ``customer``.

    A foreign id posted from another customer then fails validation like any unknown id.
    """
    for field in form.fields.values():
        queryset = getattr(field, "queryset", None)
        if queryset is not None and issubclass(queryset.model, TenantModel):
            field.queryset = queryset.for_customer(customer)


class TenantForm(forms.Form):
    """A plain form that knows its customer and scopes its model choice fields."""

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer = customer
        scope_choice_fields(self, customer)


class TenantModelForm(forms.ModelForm):
    """A model form for a ``TenantModel``: scoped choices, and new rows get the customer."""

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer = customer
        if self.instance.pk is None:
            self.instance.customer = customer
        scope_choice_fields(self, customer)
