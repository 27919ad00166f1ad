"""Catalog of the snapshot store: chunks, index files, snapshots, upload sessions.

The bytes live in the chunk store (``storage.store``: blobs and index files in a backend);
the database holds what must be queried and kept consistent: which chunks a customer has
(the missing-query and garbage collection work on it), which snapshots exist and which index
object describes each of them. Never one row per chunk of a snapshot: a snapshot's chunk
list is its index file.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.scoping import TenantModel


class CustomerStore(models.Model):
    """A customer's namespace in the chunk store and its wrapped data key.

    The namespace is random, never the slug: object names reveal nothing about customers.
    ``wrapped_data_key`` is empty when the store runs without encryption.
    """

    customer = models.OneToOneField(
        "tenants.Customer", on_delete=models.PROTECT, related_name="store"
    )
    namespace = models.CharField(max_length=32, unique=True, editable=False)
    wrapped_data_key = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"store of {self.customer}"

    @property
    def encrypted(self) -> bool:
        return bool(self.wrapped_data_key)


class Chunk(TenantModel):
    """One unique chunk a customer's store holds (dedup scope: the customer).

    ``last_seen_at`` is the garbage collector's mark: uploads, missing-queries that find the
    chunk, commits and the GC's mark phase set it to now; the sweep removes only chunks not
    seen since before its cutoff. ``sweeping`` is the sweep's committed intent: such a chunk
    counts as missing for everyone until the sweep deleted it or an upload revived it (see
    ``storage.services.gc``).
    """

    digest = models.CharField(max_length=64)
    plain_size = models.PositiveIntegerField()
    stored_size = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    sweeping = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "digest"], name="chunk_unique_digest")
        ]
        indexes = [models.Index(fields=["customer", "last_seen_at"])]

    def __str__(self) -> str:
        return self.digest


class IndexKind(models.TextChoices):
    FULL = "full", "Full"
    DELTA = "delta", "Delta"


class IndexFile(TenantModel):
    """An index object in the store: a full digest list, or a delta against ``base``.

    Snapshots point at index files; a delta's base index file is kept (PROTECT) as long as a
    delta needs it, even after the base's snapshot was pruned. GC deletes index files that no
    snapshot and no other index file uses.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=8, choices=IndexKind.choices)
    base = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    depth = models.PositiveSmallIntegerField(default=0, help_text="Deltas between it and a full.")
    checksum = models.CharField(max_length=64, help_text="Checksum of the materialized index.")
    chunk_size = models.PositiveIntegerField()
    disk_size = models.PositiveBigIntegerField()
    entries = models.PositiveBigIntegerField()
    stored_bytes = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} index {self.checksum[:12]}"

    @property
    def object_name(self) -> str:
        return f"indexes/{self.id}.idx"


class SnapshotState(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed verification"


class Consistency(models.TextChoices):
    """How consistent a point in time is: quiesced (the guest's applications flushed, VSS or
    VMware Tools) or crash-consistent (like a power cut); blank when the agent did not say."""

    APPLICATION = "application", "Application-consistent"
    CRASH = "crash", "Crash-consistent"


CHANGE_ID_MAX = 255


class Snapshot(TenantModel):
    """A point in time of one disk of one machine: restorable bit-exact while it exists."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    machine = models.ForeignKey(
        "protection.Machine", on_delete=models.PROTECT, related_name="snapshots"
    )
    disk = models.ForeignKey("protection.Disk", on_delete=models.PROTECT, related_name="snapshots")
    created_at = models.DateTimeField(
        default=timezone.now, help_text="The point in time: when the source snapshot was taken."
    )
    committed_at = models.DateTimeField(default=timezone.now)
    base = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The snapshot this one was replicated incrementally against.",
    )
    disk_size = models.PositiveBigIntegerField()
    chunk_size = models.PositiveIntegerField()
    consistency = models.CharField(max_length=16, choices=Consistency.choices, blank=True)
    change_id = models.CharField(
        max_length=CHANGE_ID_MAX,
        blank=True,
        help_text="The source's change id of this disk at this point in time (VMware CBT): "
        "the next replication asks the platform what changed since it.",
    )
    index = models.ForeignKey(IndexFile, on_delete=models.PROTECT, related_name="snapshots")
    index_checksum = models.CharField(max_length=64)
    state = models.CharField(
        max_length=16, choices=SnapshotState.choices, default=SnapshotState.COMPLETE
    )
    protected = models.BooleanField(
        default=False, help_text="Protected snapshots are never pruned."
    )
    job = models.ForeignKey(
        "protection.ReplicationJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="snapshots",
        help_text="The replication job that produced it.",
    )
    logical_bytes = models.PositiveBigIntegerField(
        default=0, help_text="Bytes of non-zero chunks: what a restore reads from the store."
    )
    chunk_count = models.PositiveBigIntegerField(default=0)
    zero_chunks = models.PositiveBigIntegerField(default=0)
    new_chunks = models.PositiveBigIntegerField(default=0)
    new_stored_bytes = models.PositiveBigIntegerField(
        default=0, help_text="Stored bytes of chunks first uploaded for this snapshot."
    )
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["customer", "disk", "-created_at"]),
            models.Index(fields=["customer", "machine", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.disk} @ {self.created_at:%Y-%m-%d %H:%M}"


class SessionState(models.TextChoices):
    OPEN = "open", "Open"
    COMMITTED = "committed", "Committed"
    ABORTED = "aborted", "Aborted"


class UploadSession(TenantModel):
    """An agent's upload of one disk: chunks arrive, then one commit makes the snapshot.

    Open sessions hold back garbage collection (nothing newer than the oldest open session is
    swept) and pruning of their base snapshot. A session that stops talking expires.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    machine = models.ForeignKey("protection.Machine", on_delete=models.CASCADE, related_name="+")
    disk = models.ForeignKey("protection.Disk", on_delete=models.CASCADE, related_name="+")
    # Prune never deletes the base of an OPEN session (it checks); closed sessions let go.
    base = models.ForeignKey(
        Snapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    chunk_size = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=SessionState.choices, default="open")
    taken_at = models.DateTimeField(default=timezone.now)
    consistency = models.CharField(max_length=16, choices=Consistency.choices, blank=True)
    change_id = models.CharField(max_length=CHANGE_ID_MAX, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    job = models.ForeignKey(
        "protection.ReplicationJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="upload_sessions",
    )
    chunks_uploaded = models.PositiveBigIntegerField(default=0)
    bytes_received = models.PositiveBigIntegerField(default=0)
    stored_bytes_added = models.PositiveBigIntegerField(default=0)
    snapshot = models.OneToOneField(
        Snapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="session"
    )
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "started_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["disk"], condition=Q(state="open"), name="session_one_open_per_disk"
            )
        ]

    def __str__(self) -> str:
        return f"upload {self.id} ({self.state})"


class QuarantinedChunk(TenantModel):
    """A chunk that failed verification: moved out of the store, its snapshots marked failed.

    ``repaired_at`` is set when an agent uploads the same digest again.
    """

    digest = models.CharField(max_length=64)
    reason = models.CharField(max_length=500)
    detected_at = models.DateTimeField(default=timezone.now)
    repaired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["customer", "digest"])]


class MaintenanceKind(models.TextChoices):
    PRUNE = "prune", "Prune"
    GC = "gc", "Garbage collection"
    VERIFY = "verify", "Verify"


class MaintenanceRun(models.Model):
    """History of prune / GC / verify runs with their JSON summary, for provider staff."""

    kind = models.CharField(max_length=8, choices=MaintenanceKind.choices)
    customer = models.ForeignKey(
        "tenants.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.started_at:%Y-%m-%d %H:%M}"
