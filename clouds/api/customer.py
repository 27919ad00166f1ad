"""Customer API of clouds and download links: what the Manage Clouds, Download links and
wizard pages do, scriptable, under ``/api/v1/c/<customer_slug>/``.

The roles are the pages' roles: viewers read; operators register a cloud (as the wizard
does), test a connection, make and revoke download links; admins change and delete clouds.
Every write is a ``clouds.services`` call, so a cloud is saved only after its connection
check passed. A refused check is a 400 whose ``details`` carry the connector's ``code`` (and,
for an untrusted certificate, the ``fingerprint`` to send back as ``tls_fingerprint``).
"""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import filters, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from protection.api.views import CUSTOMER_SLUG
from tenants.api.base import ApiPagination, TenantModelViewSet, TenantReadOnlyViewSet, call_service
from tenants.api.serializers import error_responses
from tenants.models import Role

from ..crypto import SealError
from ..models import CLOUD_PLATFORMS, Cloud, DownloadLink
from ..selectors.clouds import cloud_search
from ..selectors.downloads import LINK_STATES, download_link_search
from ..services.clouds import (
    OVIRT_OPTIONS,
    VMWARE_OPTIONS,
    CloudCheckFailed,
    cloud_create,
    cloud_delete,
    cloud_test,
    cloud_update,
)
from ..services.downloads import download_link_create, download_link_revoke
from .base import Conflict, ProtocolError, agent_exception_handler
from .serializers.customer import (
    OPTION_FIELDS,
    CloudCreateSerializer,
    CloudSerializer,
    CloudTestSerializer,
    DownloadLinkCreateSerializer,
    DownloadLinkSerializer,
)


class ChoiceFilter(filters.BaseFilterBackend):
    """``?<name>=`` limited to known values; a bad one is a 400, so a typo is noticed."""

    name, values, description = "", (), ""

    def filter_queryset(self, request, queryset, view):
        value = request.query_params.get(self.name, "")
        if value and value not in self.values:
            allowed = ", ".join(self.values)
            message = f"Unknown {self.name} “{value}”; use one of: {allowed}."
            raise serializers.ValidationError({self.name: [message]})
        return self.apply(queryset, value)

    def apply(self, queryset, value):
        return queryset.filter(**{self.name: value}) if value else queryset

    def get_schema_operation_parameters(self, view):
        schema = {"type": "string", "enum": list(self.values)}
        return [
            {"name": self.name, "in": "query", "required": False, "schema": schema}
            | ({"description": self.description} if self.description else {})
        ]


class PlatformFilter(ChoiceFilter):
    name, values = "platform", CLOUD_PLATFORMS


class LinkStateFilter(ChoiceFilter):
    name, values = "state", ("all", *LINK_STATES)
    description = "Which links to list; `live` when omitted."

    def apply(self, queryset, value):
        value = value or "live"
        return queryset if value == "all" else queryset.filter(state=value)


class CustomerApiMixin:
    """Filters apply to lists only (a detail route finds the object whatever the query), and
    refusals may carry a machine-readable ``code`` in the error's ``details``."""

    pagination_class = ApiPagination

    def filter_queryset(self, queryset):
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_exception_handler(self):
        return agent_exception_handler(super().get_exception_handler())


def checked(service, *args, **kwargs):
    """Run a cloud service: a refused connection check is a 400 with the connector's kind."""
    try:
        return call_service(service, *args, **kwargs)
    except CloudCheckFailed as exc:
        details = {"code": exc.kind, "fingerprint": exc.fingerprint}
        if getattr(exc.error, "missing", None):
            details["missing"] = list(exc.error.missing)
        raise ProtocolError(exc.message, details) from None
    except SealError as exc:
        raise serializers.ValidationError({"password": [str(exc)]}) from None


def sent_options(serializer) -> dict:
    """The platform options the request sent. Form posts (HTML input) fill an absent
    checkbox with False; only what was sent counts, so the other platform's are refused."""
    data, sent = serializer.validated_data, serializer.initial_data
    return {name: data[name] for name in OPTION_FIELDS if name in data and name in sent}


CLOUD_WRITE = {200: CloudSerializer, **error_responses(400, 403, 404)}


@extend_schema(parameters=[CUSTOMER_SLUG], tags=["clouds"])
@extend_schema_view(
    list=extend_schema(
        summary="List clouds",
        description="`search` matches the name and the endpoint (every word must match).",
        responses={200: CloudSerializer(many=True), **error_responses(400, 403, 404)},
    ),
    retrieve=extend_schema(
        summary="One cloud", responses={200: CloudSerializer, **error_responses(403, 404)}
    ),
    create=extend_schema(
        summary="Register a cloud (operator)",
        description="Saved only after the connection check passed; a refusal is a 400 whose "
        "`details` hold `code` (unreachable, timeout, tls, auth, api, privileges) and "
        "`fingerprint` (for `tls`).",
        request=CloudCreateSerializer,
        responses={201: CloudSerializer, **error_responses(400, 403, 404)},
    ),
    update=extend_schema(summary="Change a cloud (admin)", responses=CLOUD_WRITE),
    partial_update=extend_schema(
        summary="Change a cloud (admin)",
        description="Changing the endpoint, login, password, certificate or discovery scope "
        "checks the connection again; a refusal saves nothing.",
        responses=CLOUD_WRITE,
    ),
    destroy=extend_schema(
        summary="Delete a cloud (admin)",
        description="Refused (400, `code` `in_use`) while agents use it. Its download links "
        "stop serving.",
        responses={204: None, **error_responses(400, 403, 404)},
    ),
)
class CloudViewSet(CustomerApiMixin, TenantModelViewSet):
    """The customer's registered VMware vSphere and oVirt platforms."""

    model = Cloud
    serializer_class = CloudSerializer
    filter_backends = [PlatformFilter, filters.SearchFilter]
    search_fields = ["name", "endpoint"]
    action_roles = {
        "create": Role.OPERATOR,
        "update": Role.ADMIN,
        "partial_update": Role.ADMIN,
        "destroy": Role.ADMIN,
        "test": Role.OPERATOR,
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no customer
            return Cloud.objects.none()
        return cloud_search(self.customer)  # with ``agent_count``

    def get_serializer_class(self):
        return {"create": CloudCreateSerializer, "test": CloudTestSerializer}.get(
            self.action, CloudSerializer
        )

    def perform_create(self, serializer):
        data = serializer.validated_data
        cloud = checked(
            cloud_create,
            self.customer,
            platform=data["platform"],
            name=data["name"],
            endpoint=data["endpoint"],
            login=data["login"],
            password=data["password"],
            tls_fingerprint=data.get("tls_fingerprint", ""),
            options=sent_options(serializer),
        )
        serializer.instance = self.get_queryset().get(pk=cloud.pk)

    def perform_update(self, serializer):
        cloud, data = serializer.instance, serializer.validated_data
        own = VMWARE_OPTIONS if cloud.platform == "vmware" else OVIRT_OPTIONS
        # The service resets omitted options to defaults; a PATCH keeps them instead. An
        # option of the other platform is passed on, and refused by the service.
        options = {name: getattr(cloud, name) for name in own}
        options.update(sent_options(serializer))
        checked(
            cloud_update,
            cloud,
            name=data.get("name", cloud.name),
            endpoint=data.get("endpoint", cloud.endpoint),
            login=data.get("login", cloud.login),
            password=data.get("password") or None,
            tls_fingerprint=data.get("tls_fingerprint"),
            options=options,
        )
        serializer.instance = self.get_queryset().get(pk=cloud.pk)

    def perform_destroy(self, instance):
        try:
            cloud_delete(instance)
        except ValidationError as exc:
            raise ProtocolError(" ".join(exc.messages), {"code": "in_use"}) from None

    @extend_schema(
        summary="Test the stored connection now (operator)",
        description="The outcome is recorded on the cloud. A failed check is `ok: false` "
        "(200); 409 when the stored password cannot be decrypted (set it again).",
        request=None,
        responses={200: CloudTestSerializer, **error_responses(403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, *args, **kwargs):
        cloud = self.get_object()
        try:
            result = cloud_test(cloud)
        except SealError as exc:
            raise Conflict(str(exc), {"code": "password_unreadable"}) from None
        body = {
            "ok": result.ok,
            "message": result.message,
            "product": result.product,
            "warnings": result.warnings,
        }
        return Response(CloudTestSerializer(body).data)


LINK_RESPONSE = {200: DownloadLinkSerializer, **error_responses(403, 404)}


@extend_schema(parameters=[CUSTOMER_SLUG], tags=["download links"])
@extend_schema_view(
    list=extend_schema(
        summary="List download links",
        responses={200: DownloadLinkSerializer(many=True), **error_responses(400, 403, 404)},
    ),
    retrieve=extend_schema(summary="One download link", responses=LINK_RESPONSE),
)
class DownloadLinkViewSet(CustomerApiMixin, TenantReadOnlyViewSet):
    """Links that hand out agent packages; each carries its own enrollment token."""

    model = DownloadLink
    serializer_class = DownloadLinkSerializer
    filter_backends = [LinkStateFilter]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no customer
            return DownloadLink.objects.none()
        return download_link_search(self.customer)  # with ``state``

    def get_serializer_class(self):
        if self.action == "create":
            return DownloadLinkCreateSerializer
        return DownloadLinkSerializer

    def get_serializer_context(self):
        context = super().get_serializer_context()
        membership = getattr(self.request, "membership", None)
        context["show_urls"] = bool(membership and membership.has_role(Role.OPERATOR))
        return context

    def _answer(self, link, code=status.HTTP_200_OK) -> Response:
        link = self.get_queryset().get(pk=link.pk)
        return Response(
            DownloadLinkSerializer(link, context=self.get_serializer_context()).data, code
        )

    @extend_schema(
        summary="Make a download link (operator)",
        description="The package's agent enrolls with the portal URL this request reached. "
        "Linux needs `distro` and `driver`; VMware and oVirt need a `cloud` of that platform.",
        request=DownloadLinkCreateSerializer,
        responses={201: DownloadLinkSerializer, **error_responses(400, 403, 404)},
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        new = call_service(
            download_link_create,
            self.customer,
            server_url=request.build_absolute_uri("/").rstrip("/"),
            created_by=request.user,
            **serializer.validated_data,
        )
        return self._answer(new.link, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke a download link (operator)",
        description="It serves nothing more and its package enrolls no more agents; agents "
        "already enrolled keep working. Revoking twice is harmless.",
        request=None,
        responses=LINK_RESPONSE,
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, *args, **kwargs):
        link = self.get_object()
        download_link_revoke(link)
        return self._answer(link)
