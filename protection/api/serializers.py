"""Serializers of the protection app's customer API.

Reads are model serializers; writes validate input here and hand it to
``protection.services``. Related ids are looked up in the request customer only, so an id
of another customer's object is reported exactly like an id that does not exist.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants.api.base import TenantModelSerializer, TenantPrimaryKeyRelatedField

from ..inheritance import LABELS, SETTINGS, EffectiveSettings, effective_for_machine
from ..models import Disk, Machine, MachineGroup

UNKNOWN_GROUP = "No group with id {pk_value} in this customer."


def group_field(**kwargs) -> TenantPrimaryKeyRelatedField:
    return TenantPrimaryKeyRelatedField(
        queryset=MachineGroup.objects,
        error_messages={"does_not_exist": UNKNOWN_GROUP},
        **kwargs,
    )


# --- Groups ---------------------------------------------------------------------------


class MachineGroupSerializer(TenantModelSerializer):
    machine_count = serializers.IntegerField(
        read_only=True, help_text="Machines currently in the group."
    )

    class Meta:
        model = MachineGroup
        fields = ["id", "name", "description", "machine_count", "created_at"]
        read_only_fields = ["id", "machine_count", "created_at"]


class GroupDeleteSerializer(serializers.Serializer):
    """Where a deleted group's machines go: another group, or none (ungrouped)."""

    move_to = group_field(
        required=False,
        allow_null=True,
        help_text="Group that receives the deleted group's machines; omit or null to "
        "leave them ungrouped.",
    )

    def validate_move_to(self, value):
        if value is not None and value == self.context.get("group"):
            raise serializers.ValidationError("Machines cannot move to the group being deleted.")
        return value


# --- Machines -------------------------------------------------------------------------


class DiskSerializer(serializers.ModelSerializer):
    class Meta:
        model = Disk
        fields = ["id", "key", "label", "size_bytes"]
        read_only_fields = fields


class MachineSerializer(TenantModelSerializer):
    group_name = serializers.CharField(
        source="group.name", read_only=True, allow_null=True, default=None
    )
    is_protected = serializers.BooleanField(read_only=True)
    ip_addresses = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Machine
        fields = [
            "id",
            "name",
            "platform",
            "group",
            "group_name",
            "status",
            "status_message",
            "is_protected",
            "external_id",
            "os_name",
            "ip_addresses",
            "cpus",
            "ram_mb",
            "last_replicated_at",
            "next_run_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


# Effective settings: one typed object per setting, so the schema says what each value is.


class SourceSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=["machine", "group", "customer", "default"])
    name = serializers.CharField(help_text="The group's or machine's name; empty otherwise.")
    label = serializers.CharField(help_text="For display, e.g. “group Web servers”.")


class WindowSerializer(serializers.Serializer):
    start = serializers.TimeField()
    end = serializers.TimeField(help_text="May be before start: the window spans midnight.")


def _setting_serializer(name: str, value_field: serializers.Field):
    fields = {
        "label": serializers.CharField(),
        "value": value_field,
        "source": SourceSerializer(),
    }
    return type(name, (serializers.Serializer,), fields)


BooleanSettingSerializer = _setting_serializer("BooleanSetting", serializers.BooleanField())
IntegerSettingSerializer = _setting_serializer("IntegerSetting", serializers.IntegerField())
WindowSettingSerializer = _setting_serializer("WindowSetting", WindowSerializer())
WeekdaysSettingSerializer = _setting_serializer(
    "WeekdaysSetting",
    serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=7),
        help_text="ISO weekdays, 1 = Monday … 7 = Sunday.",
    ),
)

_SETTING_TYPES = {
    "enabled": BooleanSettingSerializer,
    "window_enabled": BooleanSettingSerializer,
    "window": WindowSettingSerializer,
    "window_days": WeekdaysSettingSerializer,
}

EffectiveSettingsSerializer = type(
    "EffectiveSettingsSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "Every replication setting's effective value and where it was set.",
        **{name: _SETTING_TYPES.get(name, IntegerSettingSerializer)() for name in SETTINGS},
    },
)


def effective_settings_data(effective: EffectiveSettings) -> dict:
    """The effective settings as plain data for ``EffectiveSettingsSerializer``."""
    data = {}
    for name in SETTINGS:
        value, source = effective.values[name].value, effective.source(name)
        if name == "window":
            value = {"start": value[0], "end": value[1]}
        data[name] = {
            "label": LABELS[name],
            "value": value,
            "source": {"level": source.level, "name": source.name, "label": source.label},
        }
    return data


class MachineDetailSerializer(MachineSerializer):
    disks = DiskSerializer(many=True, read_only=True)
    effective_settings = serializers.SerializerMethodField()

    class Meta(MachineSerializer.Meta):
        fields = [*MachineSerializer.Meta.fields, "disks", "effective_settings"]
        read_only_fields = fields

    @extend_schema_field(EffectiveSettingsSerializer)
    def get_effective_settings(self, machine: Machine) -> dict:
        data = effective_settings_data(effective_for_machine(machine))
        return EffectiveSettingsSerializer(data).data


# --- Bulk actions ---------------------------------------------------------------------


class MachineSelectionSerializer(serializers.Serializer):
    """A selection of this customer's machines; unknown ids reject the whole request."""

    machines = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        allow_empty=False,
        max_length=10000,
        help_text="Ids of machines of this customer.",
    )

    def validate_machines(self, ids: list[int]) -> list[Machine]:
        wanted = list(dict.fromkeys(ids))
        found = {
            machine.pk: machine
            for machine in Machine.objects.for_customer(self.context["customer"]).filter(
                pk__in=wanted
            )
        }
        missing = [pk for pk in wanted if pk not in found]
        if missing:
            # Foreign ids read exactly like nonexistent ones: nothing leaks across tenants.
            listed = ", ".join(str(pk) for pk in missing)
            noun = "id" if len(missing) == 1 else "ids"
            raise serializers.ValidationError(f"No machine with {noun} {listed} in this customer.")
        return [found[pk] for pk in wanted]


class MachineMoveSerializer(MachineSelectionSerializer):
    group = group_field(allow_null=True, help_text="Target group id; null removes the group.")


class ReplicateNowResultSerializer(serializers.Serializer):
    queued = serializers.IntegerField(help_text="How many machines got a manual job.")
    jobs = serializers.ListField(
        child=serializers.IntegerField(), help_text="The ids of the jobs queued."
    )
    skipped = serializers.IntegerField(help_text="How many machines got no job.")
    skipped_reasons = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Skipped machines by reason: `not_protected`, `conflict` (a job is already "
        "queued or running), `no_agent` (no agent reports the machine).",
    )
    message = serializers.CharField(help_text="A summary for display.")


class MachineActionResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="How many machines the action changed.")
    skipped = serializers.IntegerField(
        help_text="How many were left as they were (already in the requested state)."
    )
    message = serializers.CharField(help_text="A summary for display.")
