"""Bodies of the agent API (``agent/PROTOCOL.md``).

The request serializers of enroll, heartbeat, inventory and events describe their bodies
for the OpenAPI schema; the values are checked by the services (``clouds.services``), the
one place that knows the limits, so a script calling a service gets the same errors as an
agent. The job endpoints validate with their serializers, as the job services take typed
values.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from protection.inheritance import effective_for_machine
from protection.models import JobState, Platform, ReplicationJob
from protection.services.jobs import MAX_WARNING_LENGTH, MAX_WARNINGS

from ...models import EventLevel

MAX_ID = 2**63 - 1
MAX_COUNTER = 2**63 - 1
RESULT_STATES = [(s.value, s.label) for s in (JobState.SUCCEEDED, JobState.FAILED)]


# -- enroll ------------------------------------------------------------------------------


class EnrollSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The enrollment token: `acet_<prefix>.<secret>`.")
    hostname = serializers.CharField(max_length=255)
    version = serializers.CharField(max_length=64, allow_blank=True)
    platform = serializers.ChoiceField(
        choices=Platform.choices, required=False, help_text="When sent, must be the token's."
    )


class NamedRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CustomerRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()


class EnrolledSerializer(serializers.Serializer):
    agent_id = serializers.IntegerField()
    display_id = serializers.CharField(help_text="`AGENT_ID (CLOUD_ID)@CUSTOMER_ID`.")
    credential = serializers.CharField(
        help_text="`acag_<prefix>.<secret>`: shown this once; send it as a Bearer token."
    )
    customer = CustomerRefSerializer()
    cloud_id = serializers.IntegerField(allow_null=True)
    platform = serializers.ChoiceField(choices=Platform.choices)
    group = NamedRefSerializer(allow_null=True)
    heartbeat_seconds = serializers.IntegerField()


# -- heartbeat ---------------------------------------------------------------------------


class HeartbeatJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    bytes_done = serializers.IntegerField(min_value=0, required=False)
    bytes_total = serializers.IntegerField(min_value=0, required=False)
    phase = serializers.CharField(max_length=64, required=False)


class HeartbeatSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=64, allow_blank=True)
    hostname = serializers.CharField(max_length=255, allow_blank=True)
    vm_uuid = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="Appliances: the SMBIOS UUID of the VM the agent runs in, which tells the "
        "portal which host / cluster of the cloud it serves.",
    )
    job = HeartbeatJobSerializer(
        required=False, help_text="Progress of the job the agent is running."
    )


class HeartbeatAnswerSerializer(serializers.Serializer):
    agent_id = serializers.IntegerField()
    display_id = serializers.CharField()
    status = serializers.CharField()
    debug_logging = serializers.BooleanField()
    heartbeat_seconds = serializers.IntegerField()
    cancel_jobs = serializers.ListField(
        child=serializers.IntegerField(), help_text="Jobs to abandon (they were cancelled)."
    )


# -- inventory ---------------------------------------------------------------------------


class InventoryDiskSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=255, help_text="The platform's stable disk id.")
    label = serializers.CharField(max_length=255, required=False)
    size_bytes = serializers.IntegerField(min_value=0)


class InventoryMachineSerializer(serializers.Serializer):
    external_id = serializers.CharField(
        max_length=255, help_text="vSphere instance UUID, oVirt VM id, or the host's machine-id."
    )
    name = serializers.CharField(max_length=255)
    os_name = serializers.CharField(max_length=200, required=False)
    ip_addresses = serializers.ListField(child=serializers.IPAddressField(), required=False)
    cpus = serializers.IntegerField(min_value=0, required=False)
    ram_mb = serializers.IntegerField(min_value=0, required=False)
    disks = InventoryDiskSerializer(many=True)


class InventorySerializer(serializers.Serializer):
    machines = InventoryMachineSerializer(many=True)


class MachineDiskSerializer(serializers.Serializer):
    key = serializers.CharField()
    size_bytes = serializers.IntegerField()


class InventoryMachineAnswerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    disks = MachineDiskSerializer(many=True, source="disks.all")


class InventoryAnswerSerializer(serializers.Serializer):
    machines = InventoryMachineAnswerSerializer(many=True)


# -- events ------------------------------------------------------------------------------


class EventSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=EventLevel.choices, default=EventLevel.INFO)
    message = serializers.CharField(help_text="Cut at 8000 characters.")
    occurred_at = serializers.DateTimeField()
    job = serializers.IntegerField(required=False, help_text="A job of this agent.")


class EventsSerializer(serializers.Serializer):
    events = EventSerializer(many=True, help_text="At most 500 per call.")


class EventsAnswerSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()


# -- jobs --------------------------------------------------------------------------------


class JobMachineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    external_id = serializers.CharField()


class JobSerializer(serializers.ModelSerializer):
    """A job as the agent needs it: what to replicate and under which limit."""

    machine = JobMachineSerializer(read_only=True)
    disks = serializers.SerializerMethodField()
    bandwidth_limit_mbps = serializers.SerializerMethodField(
        help_text="The machine's effective bandwidth limit; null = unlimited."
    )
    snapshots = serializers.SerializerMethodField()

    class Meta:
        model = ReplicationJob
        fields = [
            "id",
            "machine",
            "state",
            "trigger",
            "created_at",
            "started_at",
            "finished_at",
            "bandwidth_limit_mbps",
            "disks",
            "phase",
            "bytes_done",
            "bytes_total",
            "bytes_read",
            "bytes_sent",
            "new_chunks",
            "error_message",
            "warnings",
            "snapshots",
        ]
        read_only_fields = fields

    @extend_schema_field(MachineDiskSerializer(many=True))
    def get_disks(self, job) -> list:
        return MachineDiskSerializer(job.machine.disks.all(), many=True).data

    def get_bandwidth_limit_mbps(self, job) -> int | None:
        limit = effective_for_machine(job.machine)["bandwidth_limit_mbps"]
        return limit or None  # 0 means unlimited

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_snapshots(self, job) -> list:
        return [str(pk) for pk in job.snapshots.order_by("created_at").values_list("pk", flat=True)]


class JobCreateSerializer(serializers.Serializer):
    machine = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="A machine this agent reports."
    )


def _counter(**kwargs):
    return serializers.IntegerField(min_value=0, max_value=MAX_COUNTER, required=False, **kwargs)


class JobProgressSerializer(serializers.Serializer):
    """Cumulative counters for the whole job (not per call)."""

    phase = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="What the agent does now; `committing` moves the job to committing.",
    )
    bytes_done = _counter()
    bytes_total = _counter()
    bytes_read = _counter()
    bytes_sent = _counter()
    new_chunks = _counter()


class JobProgressAnswerSerializer(serializers.Serializer):
    cancel = serializers.BooleanField(help_text="Stop and abort the upload sessions.")
    state = serializers.ChoiceField(choices=JobState.choices)


class JobResultSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=RESULT_STATES)
    error = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, help_text="Required when failed."
    )
    snapshots = serializers.ListField(
        child=serializers.UUIDField(),
        max_length=1024,
        required=False,
        default=list,
        help_text="The snapshots committed, one per disk of the job (when succeeded).",
    )
    bytes_done = _counter()
    bytes_total = _counter()
    bytes_read = _counter()
    bytes_sent = _counter()
    new_chunks = _counter()
    warnings = serializers.ListField(
        child=serializers.CharField(max_length=MAX_WARNING_LENGTH),
        max_length=MAX_WARNINGS,
        required=False,
        default=list,
        help_text="What went wrong without failing the job, e.g. a platform snapshot that "
        "could not be removed (shown on the job and the machine).",
    )
    change_tracking = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Whether the platform tracks the machine's changed blocks (VMware CBT) "
        "after this job; omitted when it does not apply.",
    )


class AgentCloudSerializer(serializers.Serializer):
    """The access settings of the agent's cloud (VMware and oVirt appliances).

    The only place a cloud's password leaves the server: to the enrolled agents of that
    cloud, over their authenticated channel, never into a download package."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    platform = serializers.CharField()
    endpoint = serializers.CharField()
    login = serializers.CharField()
    password = serializers.CharField()
    tls_fingerprint = serializers.CharField(allow_blank=True)
    enforce_quiesce = serializers.BooleanField()
    cluster_level_discover = serializers.BooleanField()
    on_replication_start = serializers.CharField()
    on_replication_finish = serializers.CharField()
    disk_storage_threshold_percent = serializers.IntegerField()
    free_space_threshold_percent = serializers.IntegerField()
    discovery_level = serializers.CharField()
