"""Download links: the unguessable URL behind *Download agent*, and the log of its downloads."""

from django.db import models
from django.utils import timezone

from tenants.scoping import TenantModel

from .agents import EnrollmentToken, IssuedSecret


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
