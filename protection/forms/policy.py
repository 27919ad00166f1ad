"""The replication settings form, the same for the customer, a group and a machine.

Every setting can be left to inherit (an empty input, "Inherit" in a select, or the
"inherit weekdays" box) and each one says what it would inherit and from where. The form
only turns inputs into ``ReplicationPolicy`` field values; the rules (interval range,
window, retention at the effective level) live in ``protection.services.policy`` so the API and the
pages refuse the same things with the same words.
"""

from django import forms

from tenants.forms.base import TenantForm

from ..inheritance import (
    DAY_NAMES,
    LABELS,
    EffectiveSettings,
    display_value,
    policy_values,
    split_interval,
)
from ..models import KEEP_FIELDS, ReplicationPolicy

UNIT_MINUTES = {"minutes": 1, "hours": 60, "days": 24 * 60}
TRI_STATE = {"": None, "on": True, "off": False}

# Service error keys (model fields) that are shown on a differently named form field.
ERROR_FIELDS = {"interval_minutes": "interval_value", "window_enabled": "window_mode"}


def _state(value: bool | None) -> str:
    return {None: "", True: "on", False: "off"}[value]


class PolicyForm(TenantForm):
    """Edits one level's own values; ``inherited`` is what the level gets when it sets
    nothing (``inheritance.inherited_for``), shown next to every field."""

    enabled = forms.ChoiceField(label="Replication", required=False)
    interval_value = forms.IntegerField(
        label="Interval",
        required=False,
        widget=forms.NumberInput(attrs={"min": 1}),
    )
    interval_unit = forms.ChoiceField(
        label="Interval unit",
        required=False,
        choices=[(unit, unit) for unit in UNIT_MINUTES],
        initial="minutes",
    )
    window_mode = forms.ChoiceField(label="When", required=False)
    window_start = forms.TimeField(
        label="Window start",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    window_end = forms.TimeField(
        label="Window end",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    window_days_inherit = forms.BooleanField(label="Inherit weekdays", required=False)
    window_days = forms.TypedMultipleChoiceField(
        label="Weekdays",
        required=False,
        coerce=int,
        choices=list(DAY_NAMES.items()),
        widget=forms.CheckboxSelectMultiple,
    )
    bandwidth_limit_mbps = forms.IntegerField(label="Bandwidth limit (Mbit/s)", required=False)
    keep_last = forms.IntegerField(label=LABELS["keep_last"], required=False)
    keep_hourly = forms.IntegerField(label=LABELS["keep_hourly"], required=False)
    keep_daily = forms.IntegerField(label=LABELS["keep_daily"], required=False)
    keep_weekly = forms.IntegerField(label=LABELS["keep_weekly"], required=False)
    keep_monthly = forms.IntegerField(label=LABELS["keep_monthly"], required=False)
    keep_yearly = forms.IntegerField(label=LABELS["keep_yearly"], required=False)

    def __init__(
        self,
        *args,
        customer,
        policy: ReplicationPolicy | None,
        inherited: EffectiveSettings,
        read_only: bool = False,
        **kwargs,
    ):
        self.own = policy_values(policy)
        self.inherited = inherited
        kwargs.setdefault("initial", self._initial(policy))
        super().__init__(*args, customer=customer, **kwargs)
        self.fields["enabled"].choices = [
            ("", self._inherit_choice("enabled")),
            ("on", "Enabled"),
            ("off", "Disabled"),
        ]
        self.fields["window_mode"].choices = [
            ("", self._inherit_choice("window_enabled")),
            ("off", "Any time"),
            ("on", "Only inside a window"),
        ]
        numbers = ("bandwidth_limit_mbps", *KEEP_FIELDS)
        for name in numbers:
            field = self.fields[name]
            field.widget.attrs.update(min=0, placeholder=str(inherited[name]))
        value, unit = split_interval(inherited["interval_minutes"])
        self.fields["interval_value"].widget.attrs["placeholder"] = str(value)
        if not self.initial.get("interval_value"):
            self.initial["interval_unit"] = unit
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def _inherit_choice(self, name: str) -> str:
        value = self.inherited.values[name]
        return f"Inherit ({display_value(name, value.value)}, from {value.source.label})"

    def _initial(self, policy: ReplicationPolicy | None) -> dict:
        own = self.own
        initial = {
            "enabled": _state(own["enabled"]),
            "window_mode": _state(own["window_enabled"]),
            "window_days_inherit": own["window_days"] is None,
            "window_days": own["window_days"] or self.inherited["window_days"],
            "bandwidth_limit_mbps": own["bandwidth_limit_mbps"],
            **{name: own[name] for name in KEEP_FIELDS},
        }
        if own["interval_minutes"] is not None:
            initial["interval_value"], initial["interval_unit"] = split_interval(
                own["interval_minutes"]
            )
        if own["window"] is not None:
            initial["window_start"], initial["window_end"] = own["window"]
        return initial

    # --- For the template ---------------------------------------------------------------

    def hint(self, name: str) -> str:
        """ "Inherited: 24 — from group Web servers" for an empty field; for a field this
        level sets, what it overrides."""
        value = self.inherited.values[name]
        shown = display_value(name, value.value)
        if self.own[name] is None:
            return f"Inherited: {shown} \N{EM DASH} from {value.source.label}"
        return f"Set here; would otherwise inherit {shown} from {value.source.label}"

    @property
    def hints(self) -> dict[str, str]:
        return {name: self.hint(name) for name in self.own}

    def keep_rows(self):
        return [(self[name], self.hint(name)) for name in KEEP_FIELDS]

    # --- Output -------------------------------------------------------------------------

    def clean(self):
        data = super().clean()
        number, unit = data.get("interval_value"), data.get("interval_unit") or "minutes"
        data["interval_minutes"] = None if number is None else number * UNIT_MINUTES[unit]
        if data.get("window_days_inherit"):
            data["window_days"] = None
        else:
            data["window_days"] = data.get("window_days") or []
        return data

    def policy_values(self) -> dict[str, object]:
        """The cleaned form as ``ReplicationPolicy`` field values for ``policy_update``."""
        data = self.cleaned_data
        return {
            "enabled": TRI_STATE[data.get("enabled") or ""],
            "interval_minutes": data["interval_minutes"],
            "window_enabled": TRI_STATE[data.get("window_mode") or ""],
            "window_start": data.get("window_start"),
            "window_end": data.get("window_end"),
            "window_days": data["window_days"],
            "bandwidth_limit_mbps": data.get("bandwidth_limit_mbps"),
            **{name: data.get(name) for name in KEEP_FIELDS},
        }

    def add_service_errors(self, error) -> None:
        """Show a ``ValidationError`` from ``protection.services.policy`` on the matching fields."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for key, messages in error.message_dict.items():
            field = ERROR_FIELDS.get(key, key)
            self.add_error(field if field in self.fields else None, messages)
