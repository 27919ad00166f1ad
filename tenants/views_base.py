"""Base classes every customer page derives from: the web half of the scoping mechanism.

``CustomerMixin`` resolves ``/c/<customer_slug>/`` to ``request.customer`` after checking
the membership (404 otherwise: a stranger cannot tell a foreign customer from a missing
one) and enforces the role the view needs. ``TenantObjectMixin`` gives generic views a
queryset already narrowed to that customer, so another customer's object is a 404.
"""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Role
from .selectors import membership_for


class CustomerMixin(LoginRequiredMixin):
    """Resolves the customer from the URL and checks the user's role in it.

    ``read_role`` guards safe methods (GET/HEAD), ``write_role`` everything else.
    """

    read_role = Role.VIEWER
    write_role = Role.OPERATOR

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        membership = membership_for(request.user, kwargs.get("customer_slug", ""))
        if membership is None:
            raise Http404("No such customer.")
        request.customer = membership.customer
        request.membership = membership
        self.customer = membership.customer
        self.membership = membership
        needed = self.read_role if request.method in ("GET", "HEAD", "OPTIONS") else self.write_role
        if not membership.has_role(needed):
            raise PermissionDenied(f"This needs the {Role(needed).label} role.")
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["customer"] = self.customer
        return kwargs


class TenantObjectMixin(CustomerMixin):
    """For generic list/detail/update/delete views of a ``TenantModel``."""

    model = None

    def get_queryset(self):
        return self.model.objects.for_customer(self.customer)
