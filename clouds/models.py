"""Registered platforms (clouds), replication agents and how agents get their credentials.

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


class PowerAction(models.TextChoices):
    """What a VMware agent does to the source VM's power state around a replication."""

    NONE = "none", "No action"
    POWER_OFF = "power_off", "Power off"
    POWER_ON = "power_on", "Power on"


class DiscoveryLevel(models.TextChoices):
    """The oVirt unit one agent instance discovers machines in (one agent per unit)."""

    CLUSTER = "cluster", "Cluster"
    HOST = "host", "Host"
    DATACENTER = "datacenter", "Data center"
    CLOUD = "cloud", "Cloud"


CLOUD_PLATFORMS = ("vmware", "ovirt")


class Cloud(TenantModel):
    """A registered platform (a vCenter or an oVirt engine) that agents replicate from.

    The password is kept sealed (``clouds.crypto``): it is needed in clear only to check the
    connection and to hand it to agents, never to render it back. ``tls_fingerprint`` pins
    the platform's certificate once the customer has trusted it, because vCenters and oVirt
    engines usually present certificates of their own CA.
    """

    name = models.CharField(
        max_length=100, help_text="The name of the cloud which will be shown in the UI."
    )
    platform = models.CharField(max_length=16, choices=Platform.choices)
    endpoint = models.CharField(max_length=255, blank=True)
    login = models.CharField(max_length=255, blank=True)
    password_sealed = models.TextField(blank=True, editable=False)
    tls_fingerprint = models.CharField(
        max_length=95,
        blank=True,
        help_text="SHA-256 of the platform's TLS certificate, trusted by the customer.",
    )
    # VMware vSphere
    enforce_quiesce = models.BooleanField(default=False)
    cluster_level_discover = models.BooleanField(default=False)
    on_replication_start = models.CharField(
        max_length=16, choices=PowerAction.choices, default=PowerAction.NONE
    )
    on_replication_finish = models.CharField(
        max_length=16, choices=PowerAction.choices, default=PowerAction.NONE
    )
    disk_storage_threshold_percent = models.PositiveSmallIntegerField(default=0)
    free_space_threshold_percent = models.PositiveSmallIntegerField(default=0)
    # oVirt
    discovery_level = models.CharField(
        max_length=16, choices=DiscoveryLevel.choices, default=DiscoveryLevel.CLUSTER
    )
    # The last connection check (the wizard's and Manage Clouds' "Test connection").
    checked_at = models.DateTimeField(null=True, blank=True)
    check_ok = models.BooleanField(null=True)
    check_message = models.TextField(blank=True)
    product = models.CharField(max_length=255, blank=True)
    inventory = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "name"], name="cloud_unique_name"),
            models.CheckConstraint(
                condition=Q(disk_storage_threshold_percent__lte=100)
                & Q(free_space_threshold_percent__lte=100),
                name="cloud_thresholds_are_percentages",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_password(self) -> bool:
        return bool(self.password_sealed)


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


class LinuxDistro(models.TextChoices):
    DEBIAN = "debian", "Debian/Ubuntu"
    RHEL = "rhel", "CentOS/RHEL"


class DriverType(models.TextChoices):
    PREBUILT = "prebuilt", "Pre-built"
    DKMS = "dkms", "DKMS"


class DownloadLink(IssuedSecret):
    """An unguessable, expiring, revocable URL that serves one agent package.

    The URL holds ``acdl_<prefix>.<secret>``; the secret's hash finds and checks it, and the
    text is kept sealed (``clouds.crypto``) only so the wizard and the links page can show it
    again to the customer. The package's enrollment token is derived from the link's secret
    (``clouds.services.downloads``), so the package can be built on demand.
    """

    distro = models.CharField(max_length=16, choices=LinuxDistro.choices, blank=True)
    driver = models.CharField(max_length=16, choices=DriverType.choices, blank=True)
    network = models.JSONField(
        default=dict, blank=True, help_text="Appliance network settings (DHCP or static)."
    )
    server_url = models.URLField(
        help_text="The portal URL the packaged agent enrolls with (as the customer reached it)."
    )
    # The token decides the platform, the group and the cloud (properties below): a link
    # ends with its token, and a cloud's deletion takes both along.
    enrollment_token = models.OneToOneField(
        EnrollmentToken, on_delete=models.CASCADE, related_name="download_link"
    )
    noun = "download link"

    text_sealed = models.TextField(
        editable=False, help_text="The link, sealed, so its maker can see it again while it lives."
    )
    downloads = models.PositiveIntegerField(default=0)
    last_downloaded_at = models.DateTimeField(null=True, blank=True)

    class Meta(IssuedSecret.Meta):
        pass

    # What the package is for is its enrollment token's: kept in one place.
    @property
    def platform(self) -> str:
        return self.enrollment_token.platform

    def get_platform_display(self) -> str:
        return self.enrollment_token.get_platform_display()

    @property
    def group(self):
        return self.enrollment_token.group

    @property
    def group_id(self):
        return self.enrollment_token.group_id

    @property
    def cloud(self):
        return self.enrollment_token.cloud

    @property
    def cloud_id(self):
        return self.enrollment_token.cloud_id


class DownloadEvent(TenantModel):
    """One request for a download link: who fetched it, and whether it was served."""

    link = models.ForeignKey(DownloadLink, on_delete=models.CASCADE, related_name="events")
    served = models.BooleanField()
    detail = models.CharField(max_length=255, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{'served' if self.served else 'refused'} {self.at:%Y-%m-%d %H:%M}"


class WizardDraft(TenantModel):
    """One run of the Register new platform wizard, kept server-side.

    Each run has its own id in the URL, so two tabs never share state; refresh and Back
    re-render from here. ``data`` holds the choices of steps 1 and 3 (never a password: a
    new cloud is registered, with its password sealed, when step 3 passes its check).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    platform = models.CharField(max_length=16, choices=Platform.choices, blank=True)
    step = models.PositiveSmallIntegerField(default=1)
    data = models.JSONField(default=dict, blank=True)
    group = models.ForeignKey(
        "protection.MachineGroup",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    cloud = models.ForeignKey(
        Cloud, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    link = models.ForeignKey(
        DownloadLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["customer", "user", "finished_at"])]

    def __str__(self) -> str:
        return f"wizard {self.pk} ({self.platform or 'no platform yet'})"
