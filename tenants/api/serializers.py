"""Serializers of the tenants app's API, and the error body every endpoint shares."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from ..models import Membership, Role


class CustomerMembershipSerializer(serializers.ModelSerializer):
    """A customer as its member sees it: who it is and what the member may do there.

    Built from the membership rather than the customer, so the role travels with it and a
    client can decide which actions to offer without a second request.
    """

    slug = serializers.SlugField(source="customer.slug", read_only=True)
    name = serializers.CharField(source="customer.name", read_only=True)
    time_zone = serializers.CharField(
        source="customer.time_zone",
        read_only=True,
        help_text="IANA time zone; replication windows and retention use it.",
    )
    role = serializers.ChoiceField(choices=Role.choices, read_only=True)

    class Meta:
        model = Membership
        fields = ["slug", "name", "time_zone", "role"]
        read_only_fields = fields


class ApiErrorBodySerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status code, repeated.")
    message = serializers.CharField(help_text="A human-readable summary.")
    details = serializers.JSONField(
        required=False, help_text="Field → messages, for validation errors (400)."
    )


class ApiErrorSerializer(serializers.Serializer):
    """The shape of every error response (see ``acura_portal.api.exception_handler``)."""

    error = ApiErrorBodySerializer()


def error_responses(*codes: int) -> dict:
    """``responses`` entries for ``@extend_schema``: the shared error body per status."""
    descriptions = {
        400: "Invalid input; `details` names the fields. Nothing was changed.",
        403: "Not logged in, or your role in this customer is too low.",
        404: "No such customer or object for you (another customer's objects included).",
        401: "Missing, invalid or revoked credential.",
        409: "The object is in a state that does not allow this (e.g. a closed session).",
        411: "The request must say its Content-Length.",
        413: "The request body is larger than the server accepts.",
        416: "The requested range lies outside the image.",
    }
    return {
        code: OpenApiResponse(ApiErrorSerializer, description=descriptions[code]) for code in codes
    }
