"""The API half of the scoping mechanism: viewsets and serializer fields.

Customer routes live under ``/api/v1/c/<customer_slug>/``; ``TenantViewSet`` resolves the
customer and checks the membership exactly like ``CustomerMixin`` does for pages, and
hands DRF a queryset narrowed to that customer. ``TenantModelSerializer`` uses
``TenantPrimaryKeyRelatedField`` for relations, so a posted id of another customer's
object is "does not exist".
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import permissions, serializers, viewsets
from rest_framework.pagination import PageNumberPagination

from ..models import Role
from ..scoping import TenantModel
from ..views.base import enter_customer


class HasCustomerRole(permissions.BasePermission):
    message = "Your role in this customer does not allow this."

    def has_permission(self, request, view):
        needed = view.read_role if request.method in permissions.SAFE_METHODS else view.write_role
        needed = getattr(view, "action_roles", {}).get(getattr(view, "action", None), needed)
        return request.membership.has_role(needed)


class TenantViewSetMixin:
    """Resolves ``customer_slug`` from the route; 404 for strangers (see ``CustomerMixin``)."""

    read_role = Role.VIEWER
    write_role = Role.OPERATOR
    action_roles: dict[str, str] = {}
    permission_classes = [permissions.IsAuthenticated, HasCustomerRole]
    model = None

    def initial(self, request, *args, **kwargs):
        # Authentication first, so an anonymous caller gets 401/403 rather than 404.
        self.perform_authentication(request)
        if request.user and request.user.is_authenticated:
            membership = enter_customer(request, kwargs.get("customer_slug", ""))
            self.customer = membership.customer
        super().initial(request, *args, **kwargs)

    def get_queryset(self):
        return self.model.objects.for_customer(self.customer)

    def http_method_not_allowed(self, request, *args, **kwargs):
        # A detail route answers 404 for an id that is not this customer's, whatever the
        # method: only the customer's own objects get the honest 405, so a stranger cannot
        # probe which methods exist for an object it cannot see.
        if (getattr(self, "lookup_url_kwarg", None) or self.lookup_field) in kwargs:
            self.get_object()
        return super().http_method_not_allowed(request, *args, **kwargs)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["customer"] = getattr(self, "customer", None)
        return context

    def perform_create(self, serializer):
        serializer.save(customer=self.customer)


class TenantModelViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    pass


class TenantReadOnlyViewSet(TenantViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass


class TenantPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A relation field whose choices are the request customer's rows only."""

    def get_queryset(self):
        queryset = super().get_queryset()
        if queryset is not None and issubclass(queryset.model, TenantModel):
            customer = self.context.get("customer")
            if customer is None:
                return queryset.none()
            queryset = queryset.for_customer(customer)
        return queryset


class TenantModelSerializer(serializers.ModelSerializer):
    serializer_related_field = TenantPrimaryKeyRelatedField


def call_service(service, *args, **kwargs):
    """Run a service; its ``ValidationError`` becomes a DRF 400 with field details."""
    try:
        return service(*args, **kwargs)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(serializers.as_serializer_error(exc)) from exc


class ApiPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
