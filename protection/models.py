"""Machines, their disks and groups, and the replication settings stored at three levels."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.scoping import TenantManager, TenantModel


class Platform(models.TextChoices):
    LINUX = "linux", "Linux"
    WINDOWS = "windows", "Windows"
    VMWARE = "vmware", "VMware vSphere"
    OVIRT = "ovirt", "oVirt/zVirt"


class MachineStatus(models.TextChoices):
    """The product description's machine states.

    Agents report new machines as *Discovered* (Windows agents) or *Unprotected* (the
    others); *Start Protection* moves them to *Protected*, the first replication to
    *Initial sync*, then *In sync* / *Replicating* / *Error*; *Paused* keeps protection
    but stops scheduling.
    """

    DISCOVERED = "discovered", "Discovered"
    UNPROTECTED = "unprotected", "Unprotected"
    PROTECTED = "protected", "Protected"
    INITIAL_SYNC = "initial_sync", "Initial sync"
    IN_SYNC = "in_sync", "In sync"
    REPLICATING = "replicating", "Replicating"
    ERROR = "error", "Error"
    PAUSED = "paused", "Paused"


UNPROTECTED_STATUSES = frozenset({MachineStatus.DISCOVERED, MachineStatus.UNPROTECTED})


class NaturalKeyManager(TenantManager):
    """Natural keys (customer slug + a per-customer unique field) for fixtures: loaddata
    looks rows up across customers, so the lookup opens the scope with the slug in hand."""

    natural_fields: tuple[str, ...] = ()

    def get_by_natural_key(self, customer_slug, *values):
        lookup = dict(zip(self.natural_fields, values, strict=True))
        return self.all_customers().get(customer__slug=customer_slug, **lookup)


class MachineGroupManager(NaturalKeyManager):
    natural_fields = ("name",)


class MachineManager(NaturalKeyManager):
    natural_fields = ("platform", "external_id")


class DiskManager(NaturalKeyManager):
    natural_fields = ("machine__platform", "machine__external_id", "key")


class MachineGroup(TenantModel):
    """Machines grouped by function or by common replication schedule."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MachineGroupManager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "name"], name="group_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    def natural_key(self):
        return (self.customer.slug, self.name)

    natural_key.dependencies = ["tenants.customer"]


class Machine(TenantModel):
    """A protected (or protectable) machine as an agent reported it."""

    name = models.CharField(max_length=255)
    platform = models.CharField(max_length=16, choices=Platform.choices)
    group = models.ForeignKey(
        MachineGroup,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="machines",
    )
    external_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="The platform's id for the machine (vSphere instance UUID, oVirt VM id, "
        "host machine-id).",
    )
    os_name = models.CharField("OS", max_length=200, blank=True)
    ip_addresses = models.JSONField(default=list, blank=True)
    cpus = models.PositiveIntegerField("CPUs", null=True, blank=True)
    ram_mb = models.PositiveBigIntegerField("RAM (MiB)", null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=MachineStatus.choices, default=MachineStatus.UNPROTECTED
    )
    status_message = models.CharField(max_length=500, blank=True)
    agent = models.ForeignKey(
        "clouds.Agent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="machines",
        help_text="The agent that reports this machine and replicates it.",
    )
    last_replicated_at = models.DateTimeField(null=True, blank=True)
    change_tracking = models.BooleanField(
        null=True,
        blank=True,
        help_text="Whether the platform tracks this machine's changed blocks (VMware CBT), as "
        "its agent last reported; empty when not known.",
    )
    next_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MachineManager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "platform", "external_id"],
                condition=~Q(external_id=""),
                name="machine_unique_external_id",
            )
        ]
        indexes = [
            models.Index(fields=["customer", "status"]),
            models.Index(fields=["customer", "group"]),
        ]

    def __str__(self) -> str:
        return self.name

    def natural_key(self):
        return (self.customer.slug, self.platform, self.external_id)

    natural_key.dependencies = ["tenants.customer", "protection.machinegroup"]

    @property
    def is_protected(self) -> bool:
        return self.status not in UNPROTECTED_STATUSES


class Disk(TenantModel):
    """One disk of a machine; ``key`` is the platform's stable identifier for it."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="disks")
    key = models.CharField(max_length=255)
    label = models.CharField(max_length=255, blank=True)
    size_bytes = models.PositiveBigIntegerField()

    objects = DiskManager()

    class Meta:
        ordering = ["machine", "key"]
        constraints = [models.UniqueConstraint(fields=["machine", "key"], name="disk_unique_key")]

    def __str__(self) -> str:
        return self.label or self.key

    def natural_key(self):
        return (*self.machine.natural_key(), self.key)

    natural_key.dependencies = ["protection.machine"]


MIN_INTERVAL_MINUTES = 5
MAX_INTERVAL_MINUTES = 7 * 24 * 60

KEEP_FIELDS = (
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
)


class ReplicationPolicy(TenantModel):
    """Replication schedule and snapshot retention stored at one level.

    One row per level: the customer's (no group, no machine), a group's, or a machine's.
    Every setting is nullable: empty means "inherit from the level above" (machine → group
    → customer → built-in default). The window's start and end inherit together; weekdays
    inherit on their own. ``protection.inheritance`` computes the effective values.
    """

    group = models.OneToOneField(
        MachineGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="policy"
    )
    machine = models.OneToOneField(
        Machine, null=True, blank=True, on_delete=models.CASCADE, related_name="policy"
    )

    enabled = models.BooleanField(null=True, blank=True)
    interval_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[
            MinValueValidator(MIN_INTERVAL_MINUTES),
            MaxValueValidator(MAX_INTERVAL_MINUTES),
        ],
    )
    window_enabled = models.BooleanField(
        null=True, blank=True, help_text="Restrict replication to a time-of-day window."
    )
    window_start = models.TimeField(null=True, blank=True)
    window_end = models.TimeField(null=True, blank=True)
    window_days = models.JSONField(
        null=True, blank=True, help_text="ISO weekdays (1 = Monday … 7 = Sunday)."
    )
    bandwidth_limit_mbps = models.PositiveIntegerField(
        "Bandwidth limit (Mbit/s)", null=True, blank=True, help_text="0 means unlimited."
    )
    keep_last = models.PositiveIntegerField(null=True, blank=True)
    keep_hourly = models.PositiveIntegerField(null=True, blank=True)
    keep_daily = models.PositiveIntegerField(null=True, blank=True)
    keep_weekly = models.PositiveIntegerField(null=True, blank=True)
    keep_monthly = models.PositiveIntegerField(null=True, blank=True)
    keep_yearly = models.PositiveIntegerField(null=True, blank=True)

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "replication policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(group__isnull=True) | Q(machine__isnull=True),
                name="policy_one_level",
            ),
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(group__isnull=True, machine__isnull=True),
                name="policy_unique_customer_level",
            ),
        ]

    def __str__(self) -> str:
        if self.machine_id:
            return f"machine {self.machine}"
        if self.group_id:
            return f"group {self.group}"
        return f"customer {self.customer}"


class JobTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"  # Replicate now in the portal
    AGENT = "agent", "Agent"  # acura-agent replicate on the machine


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMMITTING = "committing", "Committing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_JOB_STATES = (JobState.QUEUED, JobState.RUNNING, JobState.COMMITTING)
FINAL_JOB_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class ReplicationJob(TenantModel):
    """One replication of one machine (all its disks): queued → running → committing → end.

    At most one active job per machine is a database constraint, so two dispatchers (or a
    dispatcher and *Replicate now*) racing cannot both create one. Progress counters are
    written by the agent's progress calls; ``last_progress_at`` lets beat fail a stuck job.
    """

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="jobs")
    agent = models.ForeignKey(
        "clouds.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    trigger = models.CharField(max_length=16, choices=JobTrigger.choices)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    phase = models.CharField(
        max_length=64, blank=True, help_text="What the agent is doing (reading disk-1, …)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_progress_at = models.DateTimeField(null=True, blank=True)
    bytes_total = models.PositiveBigIntegerField(default=0)
    bytes_done = models.PositiveBigIntegerField(default=0)
    bytes_read = models.PositiveBigIntegerField(default=0)
    bytes_sent = models.PositiveBigIntegerField(default=0)
    new_chunks = models.PositiveBigIntegerField(default=0)
    error_message = models.CharField(max_length=1000, blank=True)
    warnings = models.JSONField(
        default=list,
        blank=True,
        help_text="What went wrong without failing the job (e.g. a platform snapshot that "
        "could not be removed), as the agent reported it.",
    )
    cancel_requested = models.BooleanField(
        default=False, help_text="Cancel was asked for while the agent runs it."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["machine"],
                condition=Q(state__in=["queued", "running", "committing"]),
                name="job_one_active_per_machine",
            )
        ]
        indexes = [
            models.Index(fields=["customer", "machine", "-created_at"]),
            models.Index(fields=["customer", "-created_at"]),
            models.Index(fields=["state", "last_progress_at"]),
            models.Index(fields=["agent", "state"]),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} of {self.machine}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES

    @property
    def percent(self) -> int:
        if not self.bytes_total:
            return 100 if self.state == JobState.SUCCEEDED else 0
        return min(100, self.bytes_done * 100 // self.bytes_total)

    @property
    def duration(self):
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at
