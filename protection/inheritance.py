"""Settings inheritance: the one function that computes effective replication settings.

Values are looked up field by field from the most specific level to the least: machine →
group → customer → built-in default. Each effective value remembers its source so pages
can say "inherited from group Web servers". The merge is a pure function over plain
mappings (``merge_levels``) so it can be property-tested; the loaders below only fetch the
policies of the levels that apply.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time

from .models import KEEP_FIELDS, Machine, MachineGroup, ReplicationPolicy

ALL_DAYS = [1, 2, 3, 4, 5, 6, 7]

# Settings as they inherit. "window" is the (start, end) pair: a start without its end
# has no meaning, so the two always come from the same level.
SETTINGS = (
    "enabled",
    "interval_minutes",
    "window_enabled",
    "window",
    "window_days",
    "bandwidth_limit_mbps",
    *KEEP_FIELDS,
)

DEFAULTS: dict[str, object] = {
    "enabled": True,
    "interval_minutes": 60,
    "window_enabled": False,
    "window": (time(22, 0), time(6, 0)),
    "window_days": ALL_DAYS,
    "bandwidth_limit_mbps": 0,
    "keep_last": 24,
    "keep_hourly": 0,
    "keep_daily": 14,
    "keep_weekly": 8,
    "keep_monthly": 12,
    "keep_yearly": 0,
}

LABELS = {
    "enabled": "Replication enabled",
    "interval_minutes": "Interval",
    "window_enabled": "Restrict to a window",
    "window": "Allowed window",
    "window_days": "Weekdays",
    "bandwidth_limit_mbps": "Bandwidth limit",
    "keep_last": "Keep last",
    "keep_hourly": "Keep hourly",
    "keep_daily": "Keep daily",
    "keep_weekly": "Keep weekly",
    "keep_monthly": "Keep monthly",
    "keep_yearly": "Keep yearly",
}


@dataclass(frozen=True)
class Source:
    """Where an effective value was set."""

    level: str  # "machine" | "group" | "customer" | "default"
    name: str = ""

    @property
    def label(self) -> str:
        if self.level == "default":
            return "built-in default"
        if self.level == "customer":
            return "customer settings"
        return f"{self.level} {self.name}"


DEFAULT_SOURCE = Source("default")


@dataclass(frozen=True)
class EffectiveValue:
    value: object
    source: Source


@dataclass
class EffectiveSettings:
    """All effective settings of one level, each with its source."""

    values: dict[str, EffectiveValue] = field(default_factory=dict)

    def __getitem__(self, name: str) -> object:
        return self.values[name].value

    def source(self, name: str) -> Source:
        return self.values[name].source

    @property
    def keep(self) -> dict[str, int]:
        return {name: self[name] for name in KEEP_FIELDS}

    def rows(self):
        """(setting, label, value, source) in display order, for templates."""
        for name in SETTINGS:
            yield name, LABELS[name], self.values[name].value, self.values[name].source


def policy_values(policy: ReplicationPolicy | None) -> dict[str, object]:
    """A policy row as a mapping of setting → value, ``None`` meaning "inherit"."""
    if policy is None:
        return dict.fromkeys(SETTINGS)
    values = {name: getattr(policy, name) for name in SETTINGS if name != "window"}
    if policy.window_start is not None and policy.window_end is not None:
        values["window"] = (policy.window_start, policy.window_end)
    else:
        values["window"] = None
    return values


def merge_levels(levels: Sequence[tuple[Source, Mapping[str, object]]]) -> EffectiveSettings:
    """Merge levels given most specific first; the first non-None value of a field wins."""
    result = EffectiveSettings()
    for name in SETTINGS:
        for source, values in levels:
            value = values.get(name)
            if value is not None:
                result.values[name] = EffectiveValue(value, source)
                break
        else:
            result.values[name] = EffectiveValue(DEFAULTS[name], DEFAULT_SOURCE)
    return result


def retention_problem(effective: EffectiveSettings) -> str | None:
    """The validation rule on the effective level: some snapshot must be kept."""
    if all((effective[name] or 0) == 0 for name in KEEP_FIELDS):
        return "At least one keep rule must be greater than 0, or no snapshot would be kept."
    return None


# --- Loaders: which levels apply to an object -------------------------------------------


def _customer_policy(customer) -> ReplicationPolicy | None:
    return (
        ReplicationPolicy.objects.for_customer(customer)
        .filter(group__isnull=True, machine__isnull=True)
        .first()
    )


def _own_policy(obj) -> ReplicationPolicy | None:
    try:
        return obj.policy
    except ReplicationPolicy.DoesNotExist:
        return None


def levels_for_customer(customer, override=None):
    return [
        (
            Source("customer"),
            override if override is not None else policy_values(_customer_policy(customer)),
        )
    ]


def levels_for_group(group: MachineGroup, override=None):
    own = override if override is not None else policy_values(_own_policy(group))
    return [(Source("group", group.name), own), *levels_for_customer(group.customer)]


def levels_for_machine(machine: Machine, override=None):
    own = override if override is not None else policy_values(_own_policy(machine))
    above = (
        levels_for_group(machine.group)
        if machine.group_id
        else levels_for_customer(machine.customer)
    )
    return [(Source("machine", machine.name), own), *above]


def effective_for_customer(customer) -> EffectiveSettings:
    return merge_levels(levels_for_customer(customer))


def effective_for_group(group: MachineGroup) -> EffectiveSettings:
    return merge_levels(levels_for_group(group))


def effective_for_machine(machine: Machine) -> EffectiveSettings:
    return merge_levels(levels_for_machine(machine))


def inherited_for(obj) -> EffectiveSettings:
    """What ``obj`` would get if it set nothing itself: the values shown as placeholders."""
    empty = dict.fromkeys(SETTINGS)
    if isinstance(obj, Machine):
        return merge_levels(levels_for_machine(obj, override=empty)[1:])
    if isinstance(obj, MachineGroup):
        return merge_levels(levels_for_group(obj, override=empty)[1:])
    return merge_levels([])
