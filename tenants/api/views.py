"""REST API of the tenants app: the customers the caller belongs to."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets

from ..selectors import memberships_of
from .serializers import CustomerMembershipSerializer, error_responses


@extend_schema_view(
    list=extend_schema(
        summary="Customers you are a member of",
        description="Entry point for clients: each customer's slug opens its routes under "
        "`/api/v1/c/<slug>/`; `role` says what you may do there.",
        responses={200: CustomerMembershipSerializer(many=True), **error_responses(403)},
    ),
    retrieve=extend_schema(
        summary="One customer you are a member of",
        responses={200: CustomerMembershipSerializer, **error_responses(403, 404)},
    ),
)
class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Lists memberships rather than customers: a user sees only where they belong, and a
    customer they don't belong to is a 404 like everywhere else."""

    serializer_class = CustomerMembershipSerializer
    lookup_field = "customer__slug"
    lookup_url_kwarg = "slug"
    lookup_value_regex = r"[-\w]+"

    def get_queryset(self):
        return memberships_of(self.request.user)
