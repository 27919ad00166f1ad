"""Registered platforms (clouds): a vCenter or an oVirt engine, and the settings the agents
that replicate from it follow (step 3 of the wizard, Manage Clouds)."""

from django.db import models
from django.db.models import Q

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
