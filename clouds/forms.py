"""Forms of the Register new platform wizard and the Manage Clouds pages.

They validate what a person types and carry the product description's hints (the '?' next
to each field); the services in ``clouds.services`` validate again and do the writes.
"""

from django import forms
from django.core.exceptions import ValidationError

from protection.models import MachineGroup, Platform
from tenants.forms.base import TenantForm

from .models import Cloud, DiscoveryLevel, DriverType, LinuxDistro, PowerAction
from .network import network_clean

PERCENT = {"min_value": 0, "max_value": 100, "initial": 0}


class PlatformForm(forms.Form):
    """Step 1: the type of the replicated platform."""

    platform = forms.ChoiceField(
        choices=Platform.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Select the type of the replicated platform."},
    )


class CloudForm(TenantForm):
    """The connection fields every cloud has; subclasses add the platform's own options.

    On a new cloud the password is required; on an existing one an empty password keeps the
    stored one (it is never rendered back). ``trust_fingerprint`` is set when the customer
    accepts the certificate the check reported as untrusted.
    """

    platform = ""
    option_fields: tuple[str, ...] = ()

    name = forms.CharField(
        label="Cloud name",
        max_length=100,
        help_text="The name of the cloud which will be shown in the UI. The name must be unique.",
    )
    endpoint = forms.CharField(max_length=255)
    login = forms.CharField(max_length=255)
    password = forms.CharField(
        max_length=255,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    trust_fingerprint = forms.CharField(required=False, max_length=95, widget=forms.HiddenInput)

    def __init__(self, *args, cloud: Cloud | None = None, prefix="cloud", **kwargs):
        super().__init__(*args, prefix=prefix, **kwargs)
        self.cloud = cloud
        if cloud is not None:
            self.fields["password"].required = False
            self.fields["password"].help_text = "Leave empty to keep the stored password."
            for name in ("name", "endpoint", "login", *self.option_fields):
                self.fields[name].initial = getattr(cloud, name)
            self.fields["trust_fingerprint"].initial = cloud.tls_fingerprint

    def options(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.option_fields}


class VMwareCloudForm(CloudForm):
    platform = "vmware"
    option_fields = (
        "enforce_quiesce",
        "cluster_level_discover",
        "on_replication_start",
        "on_replication_finish",
        "disk_storage_threshold_percent",
        "free_space_threshold_percent",
    )

    enforce_quiesce = forms.BooleanField(
        required=False,
        label="Use enforce quiesce strategy",
        help_text="By default the agent tries to quiesce the machine and creates a non-quiesced "
        "snapshot if quiescing fails. When checked, no non-quiesced snapshot is created.",
    )
    cluster_level_discover = forms.BooleanField(
        required=False,
        label="Use cluster level discover",
        help_text="Discover devices on cluster level. If unchecked, discovery is performed on "
        "host level.",
    )
    on_replication_start = forms.ChoiceField(
        choices=PowerAction.choices,
        initial=PowerAction.NONE,
        help_text="Whether to change the source machine's power state on replication start.",
    )
    on_replication_finish = forms.ChoiceField(
        choices=PowerAction.choices,
        initial=PowerAction.NONE,
        help_text="Whether to change the source machine's power state on replication finish.",
    )
    disk_storage_threshold_percent = forms.IntegerField(
        label="Storage threshold per machine disk (%)",
        help_text="Run only if the datastore has free space of X percent of the total disk size "
        "(0 – unlimited).",
        **PERCENT,
    )
    free_space_threshold_percent = forms.IntegerField(
        label="Free space storage threshold (%)",
        help_text="Run only if the datastore has X percent of its total size free (0 – unlimited).",
        **PERCENT,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].help_text = "Endpoint to connect to, e.g. vcenter.dts.loc"
        self.fields["login"].help_text = "User login, e.g. administrator@vsphere.local"
        self.fields["password"].help_text = (
            self.fields["password"].help_text or "Password to access the target cloud."
        )


class OvirtCloudForm(CloudForm):
    platform = "ovirt"
    option_fields = ("discovery_level",)

    discovery_level = forms.ChoiceField(
        choices=DiscoveryLevel.choices,
        initial=DiscoveryLevel.CLUSTER,
        help_text="The level on which replication agents discover machines: one (and only one) "
        "agent instance is deployed per cluster, host, data center or the entire cloud.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].label = "oVirt API endpoint"
        self.fields[
            "endpoint"
        ].help_text = (
            "oVirt API endpoint of the target cloud, e.g. https://zvirtnode/ovirt-engine/api"
        )
        self.fields["login"].label = "Username"
        self.fields["login"].help_text = "Username to access the target cloud, e.g. admin@internal"
        self.fields["password"].help_text = (
            self.fields["password"].help_text or "Password to access the target cloud."
        )


CLOUD_FORMS = {"vmware": VMwareCloudForm, "ovirt": OvirtCloudForm}


class GroupChoiceForm(TenantForm):
    """Step 3, every platform: the group the discovered machines go to (choose or create)."""

    group = forms.ModelChoiceField(
        queryset=MachineGroup.objects.all(),  # narrowed to the customer by TenantForm
        required=False,
        empty_label="— create a new group —",
        help_text="The group to which the protected machines will be added.",
        error_messages={"invalid_choice": "Choose one of your groups."},
    )
    new_group = forms.CharField(
        required=False, max_length=100, label="New group name", help_text="Creates the group."
    )

    def clean(self):
        data = super().clean()
        group, name = data.get("group"), (data.get("new_group") or "").strip()
        if group is None and not name and "group" not in self.errors:
            raise ValidationError("Choose a group or give the name of a new one.")
        if group is not None and name:
            self.add_error("new_group", "Choose an existing group or a new name, not both.")
        return data


class CloudChoiceForm(TenantForm):
    """Step 3, VMware and oVirt: a registered cloud, or a new one (``CloudForm``)."""

    cloud_mode = forms.ChoiceField(
        choices=[("registered", "Registered"), ("new", "New")],
        initial="registered",
        widget=forms.RadioSelect,
    )
    cloud = forms.ModelChoiceField(
        queryset=Cloud.objects.all(),  # narrowed to the customer by TenantForm
        required=False,
        error_messages={"invalid_choice": "Choose one of your registered clouds."},
    )

    def __init__(self, *args, platform: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cloud"].queryset = self.fields["cloud"].queryset.filter(platform=platform)
        label = Platform(platform).label
        self.fields["cloud_mode"].choices = [
            ("registered", f"Registered {label}"),
            ("new", f"New {label}"),
        ]
        if not self.fields["cloud"].queryset.exists():
            self.fields["cloud_mode"].initial = "new"

    def clean(self):
        data = super().clean()
        missing = data.get("cloud_mode") == "registered" and data.get("cloud") is None
        if missing and "cloud" not in self.errors:
            self.add_error("cloud", "Choose a registered cloud, or register a new one.")
        return data


class NetworkForm(forms.Form):
    """Step 3, VMware: the appliance's network settings (``clouds.network`` validates)."""

    mode = forms.ChoiceField(
        label="Agent network settings",
        choices=[("dhcp", "DHCP"), ("static", "Static")],
        initial="dhcp",
        widget=forms.RadioSelect,
    )
    ip = forms.CharField(
        required=False, label="Agent IP", help_text="The IP address of the agent, e.g. 172.22.6.230"
    )
    netmask = forms.CharField(
        required=False,
        label="Subnet mask",
        help_text="The subnet mask of the agent, e.g. 255.255.0.0",
    )
    gateway = forms.CharField(required=False, help_text="Agent gateway, e.g. 172.22.1.2")
    dns = forms.CharField(
        required=False,
        label="DNS servers",
        help_text="DNS of the agent's server; several addresses separated by commas, e.g. "
        "1.1.1.1, 2.2.2.2",
    )

    def __init__(self, *args, prefix="net", **kwargs):
        super().__init__(*args, prefix=prefix, **kwargs)

    def clean(self):
        data = super().clean()
        try:
            data["network"] = network_clean(data)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        return data


class LinuxOptionsForm(forms.Form):
    """Step 3, Linux: the target distribution and the snapshot driver's deployment type."""

    distro = forms.ChoiceField(
        label="Target distribution",
        choices=LinuxDistro.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Select the target distribution."},
    )
    driver = forms.ChoiceField(
        label="Driver deployment type",
        choices=DriverType.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Select the driver deployment type."},
    )
