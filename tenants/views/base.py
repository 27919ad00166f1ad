"""Base classes every customer page derives from: the web half of the scoping mechanism.

``CustomerMixin`` resolves ``/c/<customer_slug>/`` to ``request.customer`` after checking
the membership (404 otherwise: a stranger cannot tell a foreign customer from a missing
one) and enforces the role the view needs. ``TenantObjectMixin`` gives generic views a
queryset already narrowed to that customer, so another customer's object is a 404.
"""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from ..models import Role
from ..selectors import membership_for


def enter_customer(request, customer_slug: str):
    """Bind ``request`` to the customer of the URL, for pages and API alike.

    Sets ``request.customer`` and ``request.membership``; 404 when the user is not a member
    of an active customer with that slug, so nobody learns which customers exist.
    """
    membership = membership_for(request.user, customer_slug or "")
    if membership is None:
        raise Http404("No such customer.")
    request.customer = membership.customer
    request.membership = membership
    return membership


class CustomerMixin(LoginRequiredMixin):
    """Resolves the customer from the URL and checks the user's role in it.

    ``read_role`` guards safe methods (GET/HEAD), ``write_role`` everything else.
    """

    read_role = Role.VIEWER
    write_role = Role.OPERATOR

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        membership = enter_customer(request, kwargs.get("customer_slug", ""))
        self.customer = membership.customer
        self.membership = membership
        # The URL's object comes before the role and the method: another customer's id is
        # a 404 for every role and method, never a 403 or 405 that would confirm it exists.
        self.load_object()
        needed = self.read_role if request.method in ("GET", "HEAD", "OPTIONS") else self.write_role
        if not membership.has_role(needed):
            raise PermissionDenied(f"This needs the {Role(needed).label} role.")
        return super().dispatch(request, *args, **kwargs)

    def load_object(self) -> None:
        """Hook for views with an object in the URL (see ``TenantObjectMixin``)."""

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["customer"] = self.customer
        return kwargs


class TenantObjectMixin(CustomerMixin):
    """For views of a ``TenantModel`` (or of any customer-filtered ``get_queryset``).

    With ``pk`` in the URL, ``self.object`` is loaded from the customer's rows during
    dispatch, before the role and the HTTP method are looked at.
    """

    model = None
    pk_url_kwarg = "pk"

    def get_queryset(self):
        return self.model.objects.for_customer(self.customer)

    def load_object(self) -> None:
        if self.pk_url_kwarg in self.kwargs:
            self.object = get_object_or_404(self.get_queryset(), pk=self.kwargs[self.pk_url_kwarg])

    def get_object(self, queryset=None):
        if queryset is None and getattr(self, "object", None) is not None:
            return self.object
        queryset = self.get_queryset() if queryset is None else queryset
        return get_object_or_404(queryset, pk=self.kwargs[self.pk_url_kwarg])
