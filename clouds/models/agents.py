"""Replication agents and how they get their credentials.

An agent comes to life by *enrolling*: it presents an enrollment token (from the download
package or ``create_enrollment_token``) and receives an agent credential. The token decides
the customer, platform, target group and cloud; the credential then authenticates every agent
API call, so the customer of an agent request always comes from the credential.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from protection.models import Platform
from tenants.scoping import TenantModel

from .clouds import Cloud


class AgentStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # enrolled, no heartbeat yet
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"  # missed heartbeats (beat marks it)


class Agent(TenantModel):
    """One installed replication agent."""

    platform = models.CharField(max_length=16, choices=Platform.choices)
    group = models.ForeignKey(
        "protection.MachineGroup",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="agents",
        help_text="Where the machines this agent discovers are put.",
    )
    cloud = models.ForeignKey(
        Cloud, null=True, blank=True, on_delete=models.PROTECT, related_name="agents"
    )
    hostname = models.CharField(max_length=255, blank=True)
    version = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=AgentStatus.choices, default=AgentStatus.PENDING
    )
    status_message = models.CharField(max_length=500, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    debug_logging = models.BooleanField(
        default=False, help_text="The agent sends debug-level logs until this is switched off."
    )
    enrolled_with = models.ForeignKey(
        "EnrollmentToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Appliances (VMware / oVirt agents): the portal discovers their cloud's machines for
    # them. ``vm_uuid`` is the appliance VM's own SMBIOS UUID (the agent reads it), which
    # tells which host / cluster / data center it stands in and so which machines it serves.
    vm_uuid = models.CharField(max_length=64, blank=True)
    serves = models.CharField(
        max_length=255, blank=True, help_text="The part of its cloud whose machines it replicates."
    )
    discovered_at = models.DateTimeField(null=True, blank=True)
    discovery_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "last_seen_at"])]

    def __str__(self) -> str:
        return self.display_id

    @property
    def display_id(self) -> str:
        """``AGENT_ID (CLOUD_ID)@CUSTOMER_ID``, as the agent's own console shows it."""
        cloud = self.cloud_id if self.cloud_id is not None else "-"
        return f"{self.pk} ({cloud})@{self.customer_id}"


class IssuedSecret(TenantModel):
    """What enrollment tokens and download links share: a bearer secret (``clouds.tokens``)
    found by its public ``prefix`` and checked against its hash, that expires and can be
    revoked, and says why it is refused in one place."""

    noun = "secret"  # "This <noun> was revoked."

    prefix = models.CharField(max_length=32, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.noun} {self.prefix}"

    def refusal(self, now=None) -> str | None:
        """Why this cannot be used now, or None when it can."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return f"This {self.noun} was revoked."
        if self.expires_at <= now:
            return f"This {self.noun} has expired."
        return None


class EnrollmentToken(IssuedSecret):
    """A one-or-few-use secret that lets an agent enroll into one customer.

    Only the hash is stored; ``prefix`` identifies the row. Expiry, a use limit and revocation
    bound what a leaked download package can do.
    """

    platform = models.CharField(max_length=16, choices=Platform.choices)
    group = models.ForeignKey(
        "protection.MachineGroup",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    cloud = models.ForeignKey(
        Cloud, null=True, blank=True, on_delete=models.CASCADE, related_name="enrollment_tokens"
    )
    noun = "enrollment token"

    max_uses = models.PositiveIntegerField(default=1)
    uses = models.PositiveIntegerField(default=0)

    class Meta(IssuedSecret.Meta):
        pass

    def refusal(self, now=None) -> str | None:
        """Why this token cannot enroll an agent now, or None when it can."""
        refusal = super().refusal(now)
        if refusal is None and self.uses >= self.max_uses:
            return "This enrollment token has been used up."
        return refusal


class AgentCredential(TenantModel):
    """The secret an enrolled agent authenticates with (hash stored, last 4 shown)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="credentials")
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    last4 = models.CharField(max_length=4, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent"],
                condition=Q(revoked_at__isnull=True),
                name="agentcredential_one_active_per_agent",
            )
        ]

    def __str__(self) -> str:
        return f"…{self.last4}"


class EventLevel(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class AgentEvent(TenantModel):
    """A log line or event an agent sent (kept for a while, shown on the agent page)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="events")
    job = models.ForeignKey(
        "protection.ReplicationJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
    )
    level = models.CharField(max_length=8, choices=EventLevel.choices, default=EventLevel.INFO)
    message = models.TextField()
    occurred_at = models.DateTimeField(help_text="When it happened on the agent.")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["agent", "-occurred_at"]),
            models.Index(fields=["received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.level}: {self.message[:60]}"
