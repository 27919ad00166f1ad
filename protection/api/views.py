"""REST API of the protection app: one customer's machine groups and machines.

Routes live under ``/api/v1/c/<customer_slug>/``; the tenant viewsets resolve the customer
and check the membership (404 for strangers, 403 when the role is too low). Views stay
thin: input is validated by ``protection.api.serializers`` and every write is a call into
``protection.services``, whose ``ValidationError`` becomes a 400 with the usual error body.
"""

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import filters, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from tenants.api.base import ApiPagination, TenantModelViewSet, TenantReadOnlyViewSet, call_service
from tenants.api.serializers import error_responses

from ..models import Disk, Machine, MachineGroup, MachineStatus, Platform
from ..selectors import groups_of, machines_of
from ..services import machines as machine_services
from ..services.jobs import machines_replicate_now
from .serializers import (
    GroupDeleteSerializer,
    MachineActionResultSerializer,
    MachineDetailSerializer,
    MachineGroupSerializer,
    MachineMoveSerializer,
    MachineSelectionSerializer,
    MachineSerializer,
    ReplicateNowResultSerializer,
)

CUSTOMER_SLUG = OpenApiParameter(
    "customer_slug",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The customer's slug, as listed by `/api/v1/customers/`.",
)


# --- Machine groups -------------------------------------------------------------------


GROUP_WRITE = {200: MachineGroupSerializer, **error_responses(400, 403, 404)}


@extend_schema(parameters=[CUSTOMER_SLUG], tags=["machine groups"])
@extend_schema_view(
    list=extend_schema(
        summary="List machine groups",
        responses={200: MachineGroupSerializer(many=True), **error_responses(403, 404)},
    ),
    retrieve=extend_schema(
        summary="One machine group",
        responses={200: MachineGroupSerializer, **error_responses(403, 404)},
    ),
    create=extend_schema(
        summary="Create a machine group (operator)",
        description="Names are unique per customer, ignoring case.",
        responses={201: MachineGroupSerializer, **error_responses(400, 403, 404)},
    ),
    update=extend_schema(summary="Rename / describe a group (operator)", responses=GROUP_WRITE),
    partial_update=extend_schema(
        summary="Rename / describe a group (operator)", responses=GROUP_WRITE
    ),
    destroy=extend_schema(
        summary="Delete a machine group (operator)",
        description="The group's machines move to `move_to` (query parameter or JSON body) "
        "or, without it, become ungrouped. Move and delete happen together or not at all.",
        parameters=[
            OpenApiParameter(
                "move_to",
                OpenApiTypes.INT,
                OpenApiParameter.QUERY,
                required=False,
                description="Id of the group that receives the machines.",
            )
        ],
        responses={204: None, **error_responses(400, 403, 404)},
    ),
)
class MachineGroupViewSet(TenantModelViewSet):
    """Groups of one customer; viewers read, operators and admins write."""

    model = MachineGroup
    serializer_class = MachineGroupSerializer
    pagination_class = ApiPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no customer
            return MachineGroup.objects.none()
        # An annotated (GROUP BY) query drops Meta.ordering; pages need a stable order.
        return groups_of(self.customer).order_by("name", "id")

    def _reloaded(self, group: MachineGroup) -> MachineGroup:
        # The response needs ``machine_count``, an annotation of the list query.
        return self.get_queryset().get(pk=group.pk)

    def perform_create(self, serializer):
        data = serializer.validated_data
        group = call_service(
            machine_services.group_create,
            self.customer,
            name=data["name"],
            description=data.get("description", ""),
        )
        serializer.instance = self._reloaded(group)

    def perform_update(self, serializer):
        group, data = serializer.instance, serializer.validated_data
        call_service(
            machine_services.group_update,
            self.customer,
            group,
            name=data.get("name", group.name),
            description=data.get("description", group.description),
        )
        serializer.instance = self._reloaded(group)

    def destroy(self, request, *args, **kwargs):
        group = self.get_object()
        body = request.data if isinstance(request.data, dict) else {}
        source = body if "move_to" in body else request.query_params
        target = GroupDeleteSerializer(
            data={"move_to": source["move_to"]} if "move_to" in source else {},
            context={**self.get_serializer_context(), "group": group},
        )
        target.is_valid(raise_exception=True)
        call_service(
            machine_services.group_delete,
            self.customer,
            group,
            move_to=target.validated_data.get("move_to"),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Machines -------------------------------------------------------------------------


class MachineFilterBackend(filters.BaseFilterBackend):
    """``?group=<id>|none``, ``?status=``, ``?platform=``; a bad value is a 400, not an
    empty page, so a typo in a script is noticed."""

    def filter_queryset(self, request, queryset, view):
        params, errors = request.query_params, {}
        group = params.get("group")
        if group:
            if group == "none":
                queryset = queryset.filter(group__isnull=True)
            elif group.isascii() and group.isdigit() and len(group) < 19:
                # Another customer's group id simply matches nothing in this queryset.
                queryset = queryset.filter(group_id=int(group))
            else:
                errors["group"] = ["Give a group id, or “none” for ungrouped machines."]
        for name, choices in (("status", MachineStatus), ("platform", Platform)):
            value = params.get(name)
            if not value:
                continue
            if value not in choices.values:
                allowed = ", ".join(choices.values)
                errors[name] = [f"Unknown {name} “{value}”; use one of: {allowed}."]
            else:
                queryset = queryset.filter(**{name: value})
        if errors:
            raise serializers.ValidationError(errors)
        return queryset

    def get_schema_operation_parameters(self, view):
        def enum(choices):
            return {"type": "string", "enum": list(choices.values)}

        return [
            {
                "name": "group",
                "in": "query",
                "required": False,
                "description": "A group id, or `none` for machines without a group.",
                "schema": {"type": "string"},
            },
            {"name": "status", "in": "query", "required": False, "schema": enum(MachineStatus)},
            {"name": "platform", "in": "query", "required": False, "schema": enum(Platform)},
        ]


ACTION_RESPONSES = {200: MachineActionResultSerializer, **error_responses(400, 403, 404)}


@extend_schema(parameters=[CUSTOMER_SLUG], tags=["machines"])
@extend_schema_view(
    list=extend_schema(
        summary="List machines",
        description="Search matches name, OS, external id and IP addresses.",
        responses={200: MachineSerializer(many=True), **error_responses(400, 403, 404)},
    ),
    retrieve=extend_schema(
        summary="One machine, with disks and effective replication settings",
        description="Each effective setting says where it was set: on the machine, its "
        "group, the customer, or the built-in default.",
        responses={200: MachineDetailSerializer, **error_responses(403, 404)},
    ),
)
class MachineViewSet(TenantReadOnlyViewSet):
    """Machines are created by agents; customers read them and act on selections.

    The bulk actions take ids in the body and reject the whole request if any id is not
    one of this customer's machines, so a stale or forged selection changes nothing.
    """

    model = Machine
    serializer_class = MachineSerializer
    pagination_class = ApiPagination
    filter_backends = [MachineFilterBackend, filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["name", "os_name", "external_id", "ip_addresses"]
    ordering_fields = [
        "name",
        "status",
        "platform",
        "os_name",
        "last_replicated_at",
        "next_run_at",
        "created_at",
        "updated_at",
    ]
    ordering = ["name", "id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no customer
            return Machine.objects.none()
        queryset = machines_of(self.customer)
        if self.action == "retrieve":
            disks = Prefetch("disks", queryset=Disk.objects.order_by("key"))
            queryset = queryset.select_related("customer", "group__customer").prefetch_related(
                disks
            )
        return queryset

    def get_serializer_class(self):
        return {
            "retrieve": MachineDetailSerializer,
            "start_protection": MachineSelectionSerializer,
            "stop_protection": MachineSelectionSerializer,
            "replicate_now": MachineSelectionSerializer,
            "move": MachineMoveSerializer,
        }.get(self.action, MachineSerializer)

    def _selection(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _result(self, changed: int, skipped: int, verb: str, reason: str) -> Response:
        message = f"{verb} {changed} machine{'s' if changed != 1 else ''}."
        if skipped:
            message += f" {skipped} skipped ({reason})."
        body = {"changed": changed, "skipped": skipped, "message": message}
        return Response(MachineActionResultSerializer(body).data)

    @extend_schema(
        summary="Start protection (operator)",
        description="Discovered / Unprotected machines become Protected; machines already "
        "protected are skipped.",
        responses=ACTION_RESPONSES,
    )
    @action(detail=False, methods=["post"], url_path="start-protection")
    def start_protection(self, request, *args, **kwargs):
        data = self._selection(request)
        changed, skipped = call_service(
            machine_services.machines_start_protection, self.customer, data["machines"]
        )
        return self._result(changed, skipped, "Started protection on", "already protected")

    @extend_schema(
        summary="Stop protection (operator)",
        description="Protected machines go back to Unprotected and leave the schedule; "
        "their snapshots stay.",
        responses=ACTION_RESPONSES,
    )
    @action(detail=False, methods=["post"], url_path="stop-protection")
    def stop_protection(self, request, *args, **kwargs):
        data = self._selection(request)
        changed, skipped = call_service(
            machine_services.machines_stop_protection, self.customer, data["machines"]
        )
        return self._result(changed, skipped, "Stopped protection on", "not protected")

    @extend_schema(
        summary="Replicate now (operator)",
        description="A manual replication job for each selected machine that can take one; "
        "machines not protected, already replicating or without an agent are skipped and "
        "counted by reason. Any id that is not one of this customer's machines refuses the "
        "whole request (nothing is queued).",
        responses={200: ReplicateNowResultSerializer, **error_responses(400, 403, 404)},
    )
    @action(detail=False, methods=["post"], url_path="replicate-now")
    def replicate_now(self, request, *args, **kwargs):
        data = self._selection(request)
        result = call_service(
            machines_replicate_now, self.customer, data["machines"], requested_by=request.user
        )
        body = {
            "queued": len(result.jobs),
            "jobs": result.jobs,
            "skipped": result.skipped_total,
            "skipped_reasons": result.skipped,
            "message": result.message(),
        }
        return Response(ReplicateNowResultSerializer(body).data)

    @extend_schema(
        summary="Move machines to a group (operator)",
        description="`group: null` removes the machines from their group.",
        responses=ACTION_RESPONSES,
    )
    @action(detail=False, methods=["post"])
    def move(self, request, *args, **kwargs):
        data = self._selection(request)
        changed, skipped = call_service(
            machine_services.machines_move, self.customer, data["machines"], data["group"]
        )
        return self._result(changed, skipped, "Moved", "already in that group")
