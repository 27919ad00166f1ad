"""The Register new platform wizard's runs, kept server-side."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from protection.models import Platform
from tenants.scoping import TenantModel

from .clouds import Cloud
from .downloads import DownloadLink


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
