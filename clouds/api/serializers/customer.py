"""Serializers of the customer API of clouds and download links (``clouds.api.customer``).

Reads are model serializers; writes only check types here and leave the rules to
``clouds.services`` (the same ones the Manage Clouds pages and the wizard use). A cloud's
password is write-only: no answer ever carries it, only ``has_password``. Related ids (group,
cloud) are looked up in the request customer only, so another customer's id reads as unknown.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from protection.models import MachineGroup, Platform
from tenants.api.base import TenantModelSerializer, TenantPrimaryKeyRelatedField

from ...crypto import SealError
from ...instructions import curl_command
from ...models import CLOUD_PLATFORMS, Cloud, DownloadLink, DriverType, LinuxDistro, PowerAction
from ...packages import package_filename
from ...selectors.downloads import LINK_STATES
from ...services.clouds import OVIRT_OPTIONS, VMWARE_OPTIONS
from ...services.downloads import MAX_LINK_HOURS, download_link_url, package_spec
from ...services.enrollment import MAX_USES

OPTION_FIELDS = [*VMWARE_OPTIONS, *OVIRT_OPTIONS]


# --- Clouds ---------------------------------------------------------------------------


class CloudSerializer(TenantModelSerializer):
    """A registered platform. ``password`` is accepted, never returned; omitting it on an
    update keeps the stored one."""

    platform = serializers.ChoiceField(choices=Platform.choices, read_only=True)
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=1024,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only. On update, omit it (or send it empty) to keep the stored one.",
    )
    has_password = serializers.BooleanField(read_only=True)
    on_replication_start = serializers.ChoiceField(choices=PowerAction.choices, required=False)
    on_replication_finish = serializers.ChoiceField(choices=PowerAction.choices, required=False)
    agent_count = serializers.IntegerField(read_only=True, help_text="Agents using this cloud.")
    inventory = serializers.JSONField(
        read_only=True, help_text="What the last successful connection check discovered."
    )

    class Meta:
        model = Cloud
        fields = [
            "id",
            "name",
            "platform",
            "endpoint",
            "login",
            "password",
            "has_password",
            "tls_fingerprint",
            *OPTION_FIELDS,
            "checked_at",
            "check_ok",
            "check_message",
            "product",
            "inventory",
            "agent_count",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "checked_at",
            "check_ok",
            "check_message",
            "product",
            "created_at",
        ]
        extra_kwargs = {
            "disk_storage_threshold_percent": {"min_value": 0, "max_value": 100},
            "free_space_threshold_percent": {"min_value": 0, "max_value": 100},
            "tls_fingerprint": {
                "help_text": "SHA-256 of the platform's certificate to trust. A check that "
                "meets an untrusted one answers 400 with `details.code` `tls` and "
                "`details.fingerprint`; send that back here to trust it."
            },
        }


class CloudCreateSerializer(CloudSerializer):
    platform = serializers.ChoiceField(
        choices=Platform.choices, help_text="`vmware` or `ovirt`: clouds are those platforms."
    )
    password = serializers.CharField(
        write_only=True, max_length=1024, trim_whitespace=False, style={"input_type": "password"}
    )

    class Meta(CloudSerializer.Meta):
        extra_kwargs = {
            **CloudSerializer.Meta.extra_kwargs,
            "endpoint": {"required": True},
            "login": {"required": True},
        }

    def validate_platform(self, value: str) -> str:
        if value not in CLOUD_PLATFORMS:
            raise serializers.ValidationError("Clouds are VMware vSphere or oVirt platforms.")
        return value


class CloudTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    product = serializers.CharField(allow_blank=True)
    warnings = serializers.ListField(child=serializers.CharField())


# --- Download links -------------------------------------------------------------------


class DownloadLinkSerializer(serializers.ModelSerializer):
    """A download link. ``url`` and ``curl_command`` are set only while the link is live and
    for members who may make links (operators, admins): the URL lets anyone enroll agents."""

    state = serializers.ChoiceField(choices=[(s, s.title()) for s in LINK_STATES], read_only=True)
    platform = serializers.ChoiceField(
        source="enrollment_token.platform", choices=Platform.choices, read_only=True
    )
    group = serializers.IntegerField(source="enrollment_token.group_id", read_only=True)
    group_name = serializers.CharField(
        source="enrollment_token.group.name", read_only=True, allow_null=True, default=None
    )
    cloud = serializers.IntegerField(source="enrollment_token.cloud_id", read_only=True)
    cloud_name = serializers.CharField(
        source="enrollment_token.cloud.name", read_only=True, allow_null=True, default=None
    )
    filename = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    curl_command = serializers.SerializerMethodField()
    enrollment_uses = serializers.IntegerField(
        source="enrollment_token.uses", read_only=True, help_text="Agents enrolled with it."
    )
    max_agents = serializers.IntegerField(source="enrollment_token.max_uses", read_only=True)
    network = serializers.JSONField(read_only=True)

    class Meta:
        model = DownloadLink
        fields = [
            "id",
            "prefix",
            "state",
            "platform",
            "group",
            "group_name",
            "cloud",
            "cloud_name",
            "distro",
            "driver",
            "network",
            "filename",
            "url",
            "curl_command",
            "downloads",
            "last_downloaded_at",
            "enrollment_uses",
            "max_agents",
            "expires_at",
            "revoked_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_filename(self, link: DownloadLink) -> str:
        return package_filename(package_spec(link))

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_url(self, link: DownloadLink) -> str | None:
        if link.state != "live" or not self.context.get("show_urls"):
            return None
        try:
            return download_link_url(link)
        except SealError:  # sealed under a key that is gone: the link cannot be shown again
            return None

    @extend_schema_field({"type": "string", "nullable": True})
    def get_curl_command(self, link: DownloadLink) -> str | None:
        url = self.get_url(link)
        return curl_command(self.get_filename(link), url) if url else None


@extend_schema_field(OpenApiTypes.OBJECT)
class NetworkField(serializers.DictField):
    """``{"mode": "dhcp"}`` or ``{"mode": "static", "ip", "netmask", "gateway", "dns"}``."""


class DownloadLinkCreateSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=Platform.choices)
    group = TenantPrimaryKeyRelatedField(
        queryset=MachineGroup.objects,
        required=False,
        allow_null=True,
        help_text="Where the agent puts the machines it discovers.",
    )
    cloud = TenantPrimaryKeyRelatedField(
        queryset=Cloud.objects,
        required=False,
        allow_null=True,
        help_text="Required for `vmware` and `ovirt` agents.",
    )
    distro = serializers.ChoiceField(choices=LinuxDistro.choices, required=False, allow_blank=True)
    driver = serializers.ChoiceField(choices=DriverType.choices, required=False, allow_blank=True)
    network = NetworkField(
        required=False,
        allow_empty=True,
        help_text='VMware appliance only: `{"mode": "dhcp"}` (default) or '
        '`{"mode": "static", "ip", "netmask", "gateway", "dns"}`.',
    )
    expires_hours = serializers.IntegerField(min_value=1, max_value=MAX_LINK_HOURS, required=False)
    max_agents = serializers.IntegerField(min_value=1, max_value=MAX_USES, required=False)
