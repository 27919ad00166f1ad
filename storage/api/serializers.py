"""Serializers of the agent-facing storage API."""

import base64
import binascii

from rest_framework import serializers

from protection.models import Machine
from tenants.api.serializers import ApiErrorBodySerializer

from ..models import CHANGE_ID_MAX, Consistency, Snapshot, UploadSession


class SessionOpenSerializer(serializers.Serializer):
    machine = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="The machine's id."
    )
    disk = serializers.CharField(help_text="The disk's key (as reported in the inventory).")
    taken_at = serializers.DateTimeField(
        required=False, help_text="When the source snapshot was taken (default: now)."
    )
    consistency = serializers.ChoiceField(
        choices=Consistency.choices,
        required=False,
        default="",
        allow_blank=True,
        help_text="How consistent the source snapshot is: `application` (quiesced) or "
        "`crash`; empty when unknown.",
    )
    change_id = serializers.CharField(
        max_length=CHANGE_ID_MAX,
        required=False,
        default="",
        allow_blank=True,
        trim_whitespace=False,
        help_text="The source's change id of this disk at the source snapshot (VMware CBT); "
        "the next session of the disk answers it as `base_change_id`.",
    )
    job = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        help_text="The running replication job of this agent for the machine (from "
        "`jobs/next/` or `POST jobs/`).",
    )

    def validate_machine(self, value):
        machine = Machine.objects.for_customer(self.context["customer"]).filter(pk=value).first()
        if machine is None:
            raise serializers.ValidationError("No such machine.")
        return machine

    def validate(self, attrs):
        disk = attrs["machine"].disks.filter(key=attrs["disk"]).first()
        if disk is None:
            raise serializers.ValidationError({"disk": "No disk with this key on the machine."})
        attrs["disk"] = disk
        return attrs


class SessionSerializer(serializers.ModelSerializer):
    base_snapshot = serializers.UUIDField(source="base_id", read_only=True, allow_null=True)
    base_index_checksum = serializers.SerializerMethodField()
    base_change_id = serializers.SerializerMethodField(
        help_text="The change id recorded on the base snapshot (VMware CBT), or null: ask "
        "the platform what changed since it."
    )
    machine = serializers.IntegerField(source="machine_id", read_only=True)
    disk = serializers.CharField(source="disk.key", read_only=True)
    snapshot = serializers.UUIDField(source="snapshot_id", read_only=True, allow_null=True)

    class Meta:
        model = UploadSession
        fields = [
            "id",
            "state",
            "machine",
            "disk",
            "chunk_size",
            "base_snapshot",
            "base_index_checksum",
            "base_change_id",
            "started_at",
            "chunks_uploaded",
            "bytes_received",
            "snapshot",
        ]
        read_only_fields = fields

    def get_base_index_checksum(self, session) -> str | None:
        return session.base.index_checksum if session.base_id else None

    def get_base_change_id(self, session) -> str | None:
        return (session.base.change_id or None) if session.base_id else None


class SessionOpenedSerializer(SessionSerializer):
    resumed = serializers.BooleanField(read_only=True)
    max_upload_bytes = serializers.IntegerField(read_only=True)
    max_digests_per_query = serializers.IntegerField(read_only=True)

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "resumed", "max_upload_bytes"]
        fields.append("max_digests_per_query")
        read_only_fields = fields


class MissingQuerySerializer(serializers.Serializer):
    digests = serializers.ListField(
        # No trimming: " <63 hex>" must be refused, not silently "repaired".
        child=serializers.CharField(min_length=64, max_length=64, trim_whitespace=False),
        allow_empty=True,
        help_text="Hex SHA-256 digests of plaintext chunks (thousands per call).",
    )


class MissingAnswerSerializer(serializers.Serializer):
    missing = serializers.ListField(child=serializers.CharField())


class UploadFailureSerializer(serializers.Serializer):
    digest = serializers.CharField()
    error = serializers.CharField()


class UploadResultSerializer(serializers.Serializer):
    stored = serializers.IntegerField(help_text="Chunks newly stored.")
    duplicates = serializers.IntegerField(help_text="Chunks the store already had.")
    stored_bytes = serializers.IntegerField()
    failed = UploadFailureSerializer(many=True)
    error = ApiErrorBodySerializer(
        required=False, help_text="With a 400: the shared error body (`details.failed`)."
    )


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise serializers.ValidationError(f"{what} is not valid base64.") from None


class CommitSerializer(serializers.Serializer):
    disk_size = serializers.IntegerField(min_value=0)
    index = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Full index: base64 of the concatenated 32-byte digests, all-zero "
        "chunks as 32 zero bytes.",
    )
    base_checksum = serializers.CharField(required=False, min_length=64, max_length=64)
    changes = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Changed entries against the base: base64 of records of an 8-byte "
        "big-endian position followed by the 32-byte digest.",
    )

    def validate(self, attrs):
        full = "index" in attrs
        delta = "base_checksum" in attrs or "changes" in attrs
        if full == delta:
            raise serializers.ValidationError(
                "Send either `index` (full) or `base_checksum` with `changes` (delta)."
            )
        if full:
            digests = _b64(attrs["index"], "index")
            if len(digests) % 32:
                raise serializers.ValidationError({"index": "Length is not a multiple of 32."})
            attrs["digests"] = digests
            return attrs
        if "base_checksum" not in attrs:
            raise serializers.ValidationError({"base_checksum": "Required with `changes`."})
        raw = _b64(attrs.get("changes", ""), "changes")
        if len(raw) % 40:
            raise serializers.ValidationError({"changes": "Length is not a multiple of 40."})
        attrs["change_list"] = [
            (int.from_bytes(raw[i : i + 8], "big"), raw[i + 8 : i + 40])
            for i in range(0, len(raw), 40)
        ]
        return attrs


class SnapshotSerializer(serializers.ModelSerializer):
    machine = serializers.IntegerField(source="machine_id", read_only=True)
    disk = serializers.CharField(source="disk.key", read_only=True)
    base = serializers.UUIDField(source="base_id", read_only=True, allow_null=True)
    job = serializers.IntegerField(source="job_id", read_only=True, allow_null=True)

    class Meta:
        model = Snapshot
        fields = [
            "id",
            "machine",
            "disk",
            "created_at",
            "committed_at",
            "base",
            "disk_size",
            "chunk_size",
            "index_checksum",
            "consistency",
            "change_id",
            "state",
            "protected",
            "logical_bytes",
            "chunk_count",
            "zero_chunks",
            "new_chunks",
            "new_stored_bytes",
            "job",
        ]
        read_only_fields = fields
