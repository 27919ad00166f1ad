"""The agent API under /api/v1/agent/: enroll, heartbeat, inventory, events and jobs.

Thin views: the body is read under a size limit, a service does the work, a serializer
shapes the answer. The customer and the agent come from the credential; a job or machine
that is not this agent's is a 404 (see ``agent/PROTOCOL.md``).
"""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from protection.models import JobState, Machine, ReplicationJob
from protection.services.jobs import job_finish, job_progress, job_start_for_agent, job_take_next
from tenants.api.serializers import error_responses

from .. import services
from ..crypto import SealError
from ..services.clouds import cloud_password
from ..tasks import queue_cloud_discovery
from .base import AgentApiMixin, Conflict, NotFound, agent_call, agent_exception_handler, read_json
from .serializers.agent import (
    AgentCloudSerializer,
    EnrolledSerializer,
    EnrollSerializer,
    EventsAnswerSerializer,
    EventsSerializer,
    HeartbeatAnswerSerializer,
    HeartbeatSerializer,
    InventoryAnswerSerializer,
    InventorySerializer,
    JobCreateSerializer,
    JobProgressAnswerSerializer,
    JobProgressSerializer,
    JobResultSerializer,
    JobSerializer,
)

SMALL_BODY = 64 * 1024
INVENTORY_BODY = 16 * 1024 * 1024
EVENTS_BODY = 8 * 1024 * 1024


class EnrollmentUnauthorized(exceptions.APIException):
    """401 without a credential scheme to challenge for (enroll takes no header)."""

    status_code = 401
    default_detail = "The enrollment token was refused."


def _text(data: dict, name: str):
    value = data.get(name)
    return value if isinstance(value, str) else ("" if value is None else value)


@extend_schema(tags=["agent: enrollment"])
class AgentEnrollViewSet(viewsets.ViewSet):
    """Exchange an enrollment token for an agent credential (no authentication)."""

    authentication_classes = []
    permission_classes = []
    parser_classes = [JSONParser]

    def get_exception_handler(self):
        return agent_exception_handler(super().get_exception_handler())

    @extend_schema(
        summary="Enroll an agent",
        description="The token decides the customer, platform, group and cloud. The "
        "credential in the answer is shown this once.",
        request=EnrollSerializer,
        responses={201: EnrolledSerializer, **error_responses(400, 401)},
    )
    def create(self, request):
        data = read_json(request, SMALL_BODY)
        try:
            enrolled = agent_call(
                services.agent_enroll,
                data.get("token") if isinstance(data.get("token"), str) else "",
                hostname=_text(data, "hostname"),
                version=_text(data, "version"),
                platform=data.get("platform") or None,
            )
        except services.EnrollmentRefused as exc:
            raise EnrollmentUnauthorized(exc.message) from None
        agent = enrolled.agent
        body = {
            "agent_id": agent.pk,
            "display_id": agent.display_id,
            "credential": enrolled.text,
            "customer": {"id": agent.customer_id, "slug": agent.customer.slug},
            "cloud_id": agent.cloud_id,
            "platform": agent.platform,
            "group": {"id": agent.group_id, "name": agent.group.name} if agent.group else None,
            "heartbeat_seconds": settings.AGENT_HEARTBEAT_SECONDS,
        }
        return Response(EnrolledSerializer(body).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["agent: status"])
class AgentSelfViewSet(AgentApiMixin, viewsets.ViewSet):
    """What the agent reports about itself and what it sees."""

    @extend_schema(
        summary="Heartbeat: alive, version, progress of the running job",
        request=HeartbeatSerializer,
        responses={200: HeartbeatAnswerSerializer, **error_responses(400, 401)},
    )
    @action(detail=False, methods=["post"])
    def heartbeat(self, request):
        data = read_json(request, SMALL_BODY)
        answer = agent_call(
            services.agent_heartbeat,
            self.agent,
            version=_text(data, "version"),
            hostname=_text(data, "hostname"),
            job=data.get("job"),
            vm_uuid=_text(data, "vm_uuid"),
        )
        agent = answer.agent
        if answer.discovery_due:
            queue_cloud_discovery(agent.cloud_id)
        return Response(
            {
                "agent_id": agent.pk,
                "display_id": agent.display_id,
                "status": agent.status,
                "debug_logging": agent.debug_logging,
                "heartbeat_seconds": settings.AGENT_HEARTBEAT_SECONDS,
                "cancel_jobs": answer.cancel_jobs,
            }
        )

    @extend_schema(
        summary="Report the machines and disks the agent sees",
        description="Upserted by (platform, external_id) within the customer. New machines "
        "go to the agent's group, unprotected. Disks are upserted by key; disks no longer "
        "reported are kept.",
        request=InventorySerializer,
        responses={200: InventoryAnswerSerializer, **error_responses(400, 401, 413)},
    )
    @action(detail=False, methods=["post"])
    def inventory(self, request):
        data = read_json(request, INVENTORY_BODY)
        if "machines" not in data:
            raise exceptions.ValidationError({"machines": ["This field is required."]})
        machines = agent_call(services.agent_inventory, self.agent, data["machines"])
        return Response(InventoryAnswerSerializer({"machines": machines}).data)

    @extend_schema(
        summary="The access settings of the agent's cloud (VMware / oVirt appliances)",
        description="404 when the agent belongs to no cloud. The password is the one "
        "place a cloud's secret leaves the server.",
        responses={200: AgentCloudSerializer, **error_responses(401, 404, 409)},
    )
    @action(detail=False, methods=["get"])
    def cloud(self, request):
        cloud = self.agent.cloud
        if cloud is None:
            raise NotFound("This agent belongs to no cloud.")
        fields = set(AgentCloudSerializer().fields) - {"password"}
        data = {name: getattr(cloud, name) for name in fields}
        try:
            data["password"] = cloud_password(cloud)
        except SealError as exc:
            raise Conflict(str(exc), {"code": "password_unreadable"}) from None
        return Response(AgentCloudSerializer(data).data)

    @extend_schema(
        summary="Send log lines and events",
        request=EventsSerializer,
        responses={201: EventsAnswerSerializer, **error_responses(400, 401, 413)},
    )
    @action(detail=False, methods=["post"])
    def events(self, request):
        data = read_json(request, EVENTS_BODY)
        if "events" not in data:
            raise exceptions.ValidationError({"events": ["This field is required."]})
        accepted = agent_call(services.agent_events_record, self.agent, data["events"])
        return Response({"accepted": accepted}, status=status.HTTP_201_CREATED)


JOB_ERRORS = (400, 401, 404, 409)


@extend_schema(tags=["agent: jobs"])
class AgentJobViewSet(AgentApiMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Replication jobs of this agent: take, start, report progress and the result."""

    serializer_class = JobSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request
            return ReplicationJob.objects.none()
        return (
            ReplicationJob.objects.for_customer(self.customer)
            .filter(agent=self.agent)
            .select_related("machine", "machine__group", "machine__customer")
        )

    def _answer(self, job, code=status.HTTP_200_OK):
        job = self.get_queryset().get(pk=job.pk)
        return Response(JobSerializer(job).data, status=code)

    def _valid(self, serializer_class, limit=SMALL_BODY) -> dict:
        serializer = serializer_class(data=read_json(self.request, limit))
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(summary="One job of this agent", responses={200: JobSerializer})
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Take the next queued job",
        description="The oldest queued job of this agent, now running; 204 when none.",
        request=None,
        responses={
            200: JobSerializer,
            204: OpenApiResponse(description="No job is waiting."),
            **error_responses(401),
        },
    )
    @action(detail=False, methods=["post"])
    def next(self, request):
        job = job_take_next(self.customer, self.agent)
        if job is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return self._answer(job)

    @extend_schema(
        summary="Start a job on the agent's own initiative (`acura-agent replicate`)",
        request=JobCreateSerializer,
        responses={201: JobSerializer, **error_responses(*JOB_ERRORS)},
    )
    def create(self, request):
        data = self._valid(JobCreateSerializer)
        machine = (
            Machine.objects.for_customer(self.customer)
            .filter(pk=data["machine"], agent=self.agent)
            .first()
        )
        if machine is None:
            raise NotFound(f"No machine {data['machine']} of this agent.", {"code": "not_found"})
        job = agent_call(job_start_for_agent, self.customer, self.agent, machine)
        return self._answer(job, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Report progress (cumulative counters)",
        description="409 when the job is no longer running (cancelled, or failed by the "
        "stuck-job check): the agent must stop and abort its upload sessions.",
        request=JobProgressSerializer,
        responses={200: JobProgressAnswerSerializer, **error_responses(*JOB_ERRORS)},
    )
    @action(detail=True, methods=["post"])
    def progress(self, request, pk=None):
        job = self.get_object()
        data = self._valid(JobProgressSerializer)
        phase = data.pop("phase", None)
        job = agent_call(job_progress, job, phase=phase or None, **data)
        return Response({"cancel": job.cancel_requested, "state": job.state})

    @extend_schema(
        summary="Report the job's result",
        description="`succeeded` names the snapshots the job committed. The first result "
        "wins; the same result again answers 200; a cancelled job answers 409.",
        request=JobResultSerializer,
        responses={200: JobSerializer, **error_responses(*JOB_ERRORS)},
    )
    @action(detail=True, methods=["post"])
    def result(self, request, pk=None):
        job = self.get_object()
        data = self._valid(JobResultSerializer)
        state = data.pop("state")
        error = data.pop("error", "")
        snapshots = data.pop("snapshots")
        job = agent_call(
            job_finish,
            job,
            succeeded=state == JobState.SUCCEEDED,
            error=error,
            snapshot_ids=snapshots,
            **data,
        )
        return self._answer(job)
