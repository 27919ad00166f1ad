"""Agent-facing storage API under /api/v1/agent/: upload sessions and snapshots.

The customer comes from the credential (``request.customer``), never from the request.
Binary bodies (chunk batches) are read straight from the request stream after a
Content-Length check, so the size limit is ours (413) rather than Django's form limit.
"""

import logging
import struct

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from clouds.api.base import AgentApiMixin, Conflict, NotFound, ProtocolError, read_body, read_json
from protection.models import JobState, ReplicationJob
from tenants.api.base import ApiPagination
from tenants.api.serializers import error_responses

from ..http import image_response, parse_range
from ..models import Snapshot, UploadSession
from ..services import sessions as session_services
from ..services.chunks import UploadEntry
from ..services.context import StoreKeyUnavailable
from ..services.indexes import load_index
from .serializers import (
    CommitSerializer,
    MissingAnswerSerializer,
    MissingQuerySerializer,
    SessionOpenedSerializer,
    SessionOpenSerializer,
    SessionSerializer,
    SnapshotSerializer,
    UploadResultSerializer,
)

logger = logging.getLogger(__name__)

CHUNK_RECORD = struct.Struct(">32sII")  # digest, plain size, frame size
MAX_DB_ID = 2**63 - 1


class RangeNotSatisfiable(exceptions.APIException):
    status_code = 416

    def __init__(self, size: int):
        super().__init__(f"The requested range lies outside the image of {size} bytes.")
        self.headers = {"Content-Range": f"bytes */{size}"}


class StoreUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = (
        "The store cannot be read right now (encryption keys are not configured on the "
        "server); the provider has to fix this. Nothing was changed."
    )


def parse_chunk_batch(body: bytes) -> list[UploadEntry]:
    """Records of ``digest(32) | plain size u32 | frame size u32 | zstd frame``."""
    entries, offset = [], 0
    while offset < len(body):
        if offset + CHUNK_RECORD.size > len(body):
            raise exceptions.ParseError(f"Truncated record header at byte {offset}.")
        digest, plain_size, frame_size = CHUNK_RECORD.unpack_from(body, offset)
        offset += CHUNK_RECORD.size
        if offset + frame_size > len(body):
            raise exceptions.ParseError(f"Truncated chunk data for {digest.hex()}.")
        entries.append(UploadEntry(digest.hex(), plain_size, body[offset : offset + frame_size]))
        offset += frame_size
    return entries


def service_call(fn, *args, **kwargs):
    """Map service errors: a closed session is 409, anything else invalid is 400; the
    service's error code is in ``details.code``."""
    try:
        return fn(*args, **kwargs)
    except DjangoValidationError as exc:
        code = getattr(exc, "code", None) or "invalid"
        details = {"code": code}
        if isinstance(exc, session_services.CommitMissingChunks):
            details["missing"] = exc.missing
        error = Conflict if code == "session_closed" else ProtocolError
        raise error("; ".join(exc.messages), details) from None


class StoreAgentApiMixin(AgentApiMixin):
    """Agent endpoints that read the store: a store whose encryption key cannot be
    unwrapped is a 503 (a server problem, never the agent's)."""

    def handle_exception(self, exc):
        if isinstance(exc, StoreKeyUnavailable):
            logger.error("agent request failed: %s", exc)
            exc = StoreUnavailable()
        return super().handle_exception(exc)


AGENT_ERRORS = (400, 401, 404)


@extend_schema(tags=["agent: upload"])
class UploadSessionViewSet(StoreAgentApiMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Upload one disk's changed chunks and commit them as a snapshot."""

    serializer_class = SessionSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request
            return UploadSession.objects.none()
        return UploadSession.objects.for_customer(self.customer).select_related("base", "disk")

    @extend_schema(
        summary="Open (or resume) the upload session of a disk",
        request=SessionOpenSerializer,
        responses={
            201: SessionOpenedSerializer,
            200: OpenApiResponse(SessionOpenedSerializer, description="Resumed."),
            **error_responses(*AGENT_ERRORS, 409),
        },
    )
    def create(self, request):
        data = SessionOpenSerializer(
            data=read_json(request, 1024 * 1024), context={"customer": self.customer}
        )
        data.is_valid(raise_exception=True)
        machine = data.validated_data["machine"]
        session, resumed = service_call(
            session_services.session_open,
            self.customer,
            machine,
            data.validated_data["disk"],
            taken_at=data.validated_data.get("taken_at"),
            job=self._running_job(data.validated_data["job"], machine),
            consistency=data.validated_data["consistency"],
            change_id=data.validated_data["change_id"],
        )
        session.resumed = resumed
        session.max_upload_bytes = settings.STORE_MAX_UPLOAD_BYTES
        session.max_digests_per_query = settings.STORE_MAX_DIGESTS_PER_QUERY
        body = SessionOpenedSerializer(session).data
        return Response(body, status=status.HTTP_200_OK if resumed else status.HTTP_201_CREATED)

    def _running_job(self, job_id: int, machine) -> ReplicationJob:
        """The job the session uploads for: this agent's, for this machine, running. A job
        of another agent or customer is a 404; one that ended (cancelled, failed by the
        stuck-job check) a 409, so a stale agent cannot add snapshots to it."""
        job = (
            ReplicationJob.objects.for_customer(self.customer)
            .filter(pk=job_id, agent=self.agent)
            .first()
        )
        if job is None:
            raise NotFound(f"No job {job_id} of this agent.", {"code": "not_found"})
        if job.machine_id != machine.pk:
            raise ProtocolError(
                f"Job {job.pk} replicates another machine, not {machine.name}.",
                {"code": "wrong_machine"},
            )
        if job.state not in (JobState.RUNNING, JobState.COMMITTING):
            raise Conflict(
                f"Job {job.pk} is not running (it is {job.get_state_display().lower()}).",
                {"code": "not_running", "state": job.state},
            )
        return job

    @extend_schema(summary="An upload session", responses={200: SessionSerializer})
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Which of these digests does the store lack?",
        request=MissingQuerySerializer,
        responses={200: MissingAnswerSerializer, **error_responses(*AGENT_ERRORS, 409, 413)},
    )
    @action(detail=True, methods=["post"])
    def missing(self, request, pk=None):
        session = self.get_object()
        query = MissingQuerySerializer(data=read_json(request, 8 * 1024 * 1024))
        query.is_valid(raise_exception=True)
        missing = service_call(
            session_services.session_missing, session, query.validated_data["digests"]
        )
        return Response({"missing": missing})

    @extend_schema(
        summary="Upload a batch of zstd-compressed chunks",
        description="Body: records of a 32-byte digest, the plain size and the frame size "
        "(unsigned 32-bit big-endian each), then the zstd frame. Every record is checked "
        "(decompression, length, SHA-256); a failing record stores nothing and is listed "
        "in a 400 answer, the others are stored.",
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={
            200: UploadResultSerializer,
            400: OpenApiResponse(UploadResultSerializer, description="Some records failed."),
            **error_responses(401, 404, 409, 411, 413),
        },
    )
    @action(detail=True, methods=["post"])
    def chunks(self, request, pk=None):
        session = self.get_object()
        entries = parse_chunk_batch(read_body(request, settings.STORE_MAX_UPLOAD_BYTES))
        result = service_call(session_services.session_upload, session, entries)
        body = {
            "stored": result.stored,
            "duplicates": result.duplicates,
            "stored_bytes": result.stored_bytes,
            "failed": result.failed,
        }
        if not result.failed:
            return Response(body)
        # The shared error shape, beside the counts: the good records were stored.
        body["error"] = {
            "status": 400,
            "message": f"{len(result.failed)} chunk(s) failed verification and were not "
            f"stored; the other {result.stored + result.duplicates} are in the store.",
            "details": {"code": "chunks_failed", "failed": result.failed},
        }
        return Response(body, status=400)

    @extend_schema(
        summary="Commit the snapshot",
        description="JSON: the full index or the base's checksum plus the changed entries. "
        "For large disks the full index may instead be sent raw: `Content-Type: "
        "application/octet-stream`, the concatenated 32-byte digests as the body and "
        "`?disk_size=N` (no base64; limit `ACURA_MAX_INDEX_BYTES`, 512 MiB = 16 TiB at 1 MiB "
        "chunks).",
        request={
            "application/json": CommitSerializer,
            "application/octet-stream": OpenApiTypes.BINARY,
        },
        parameters=[
            OpenApiParameter(
                "disk_size", OpenApiTypes.INT, description="With a raw (binary) index body."
            )
        ],
        responses={201: SnapshotSerializer, **error_responses(*AGENT_ERRORS, 409, 413)},
    )
    @action(detail=True, methods=["post"])
    def commit(self, request, pk=None):
        session = self.get_object()
        if request.content_type.startswith("application/octet-stream"):
            values = self._raw_full_index(request)
        else:
            data = CommitSerializer(data=read_json(request, settings.STORE_MAX_UPLOAD_BYTES))
            data.is_valid(raise_exception=True)
            values = data.validated_data
        commit = session_services.CommitRequest(
            disk_size=values["disk_size"],
            digests=values.get("digests"),
            base_checksum=values.get("base_checksum"),
            changes=values.get("change_list"),
        )
        snapshot = service_call(session_services.session_commit, session, commit)
        return Response(SnapshotSerializer(snapshot).data, status=status.HTTP_201_CREATED)

    def _raw_full_index(self, request) -> dict:
        raw_size = request.query_params.get("disk_size", "")
        if not raw_size.isdigit() or len(raw_size) > 19:
            raise serializers.ValidationError(
                {"disk_size": "Give ?disk_size=N (bytes) with a raw index body."}
            )
        digests = read_body(request, settings.STORE_MAX_INDEX_BYTES)
        if len(digests) % 32:
            raise serializers.ValidationError({"index": "Length is not a multiple of 32."})
        return {"disk_size": int(raw_size), "digests": digests}

    @extend_schema(
        summary="Abort the session",
        request=None,
        responses={200: SessionSerializer, **error_responses(401, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def abort(self, request, pk=None):
        session = self.get_object()
        service_call(session_services.session_abort, session, "aborted by the agent")
        return Response(SessionSerializer(session).data)


@extend_schema(tags=["agent: snapshots"])
class AgentSnapshotViewSet(StoreAgentApiMixin, viewsets.ReadOnlyModelViewSet):
    """The customer's snapshots: list, index (for the agent's cache), raw image (restore)."""

    serializer_class = SnapshotSerializer
    pagination_class = ApiPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request
            return Snapshot.objects.none()
        snapshots = Snapshot.objects.for_customer(self.customer).select_related("disk", "index")
        machine = self.request.query_params.get("machine")
        if machine:
            if not machine.isdigit() or int(machine) > MAX_DB_ID:
                raise serializers.ValidationError({"machine": "Must be a machine id."})
            snapshots = snapshots.filter(machine_id=int(machine))
        disk = self.request.query_params.get("disk")
        if disk:
            snapshots = snapshots.filter(disk__key=disk)
        return snapshots

    @extend_schema(
        summary="List snapshots",
        parameters=[
            OpenApiParameter("machine", OpenApiTypes.INT, description="Only this machine's."),
            OpenApiParameter("disk", OpenApiTypes.STR, description="Only this disk key's."),
        ],
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="One snapshot")
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="The snapshot's index: the concatenated 32-byte digests",
        description="Headers `X-Index-Checksum`, `X-Chunk-Size` and `X-Disk-Size` describe it; "
        "agents cache it to find changed chunks of the next replication.",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            **error_responses(401, 404),
        },
    )
    @action(detail=True, methods=["get"])
    def index(self, request, pk=None):
        from django.http import HttpResponse

        from ..services.context import customer_store

        snapshot = self.get_object()
        index = load_index(customer_store(self.customer), snapshot.index)
        response = HttpResponse(index.digests, content_type="application/octet-stream")
        response["X-Index-Checksum"] = snapshot.index_checksum
        response["X-Chunk-Size"] = str(index.chunk_size)
        response["X-Disk-Size"] = str(index.disk_size)
        return response

    @extend_schema(
        summary="The snapshot's disk as a raw image (HTTP Range supported)",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
            **error_responses(401, 404, 416),
        },
    )
    @action(detail=True, methods=["get"])
    def image(self, request, pk=None):
        snapshot = self.get_object()
        # Checked here (the size is in the row) so the 416 carries the JSON error body.
        if parse_range(request.headers.get("Range"), snapshot.disk_size) == "unsatisfiable":
            raise RangeNotSatisfiable(snapshot.disk_size)
        return image_response(request, snapshot, f"{snapshot.disk.key}-{snapshot.pk}.raw")
