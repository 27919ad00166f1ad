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

from django.db.models import Q

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


DASH = "\N{EN DASH}"
DAY_NAMES = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}

UNITS = (("days", 24 * 60), ("hours", 60), ("minutes", 1))


def split_interval(minutes: int) -> tuple[int, str]:
    """The largest unit that expresses ``minutes`` exactly: 120 → (2, "hours")."""
    for unit, factor in UNITS:
        if minutes % factor == 0:
            return minutes // factor, unit
    return minutes, "minutes"  # pragma: no cover - "minutes" always divides


def display_value(name: str, value: object) -> str:
    """A setting's value as people read it: "2 hours", "Every day", "Unlimited"."""
    if value is None:
        return "—"
    if name == "enabled":
        return "Enabled" if value else "Disabled"
    if name == "window_enabled":
        return "Only inside the window" if value else "Any time"
    if name == "interval_minutes":
        number, unit = split_interval(int(value))
        return f"{number} {unit[:-1] if number == 1 else unit}"
    if name == "window":
        start, end = value
        text = f"{start:%H:%M}{DASH}{end:%H:%M}"
        return f"{text} (spans midnight)" if end < start else text
    if name == "window_days":
        days = sorted(set(value))
        if days == ALL_DAYS:
            return "Every day"
        if len(days) >= 3 and days == list(range(days[0], days[-1] + 1)):
            return f"{DAY_NAMES[days[0]]}{DASH}{DAY_NAMES[days[-1]]}"
        return ", ".join(DAY_NAMES[d] for d in days) or "No day"
    if name == "bandwidth_limit_mbps":
        return f"{value} Mbit/s" if value else "Unlimited"
    return str(value)


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

    def display_rows(self):
        """(setting, label, displayed value, source) in display order, for templates."""
        for name, label, value, source in self.rows():
            yield name, label, display_value(name, value), source


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


class PolicySet:
    """The replication policies of one customer loaded in one query, for effective settings
    of many machines at once (the dispatcher, list pages): merged in memory, cached per level
    that stores its own values. ``machines`` narrows the load to those machines, their groups
    and the customer level (a page of a list); without it every policy is loaded.
    """

    def __init__(self, customer, machines=None):
        self.customer_values: dict = {}
        self.group_values: dict[int, dict] = {}
        self.machine_values: dict[int, dict] = {}
        rows = ReplicationPolicy.objects.for_customer(customer)
        if machines is not None:
            machines = list(machines)
            rows = rows.filter(
                Q(machine_id__in=[m.pk for m in machines])
                | Q(group_id__in={m.group_id for m in machines if m.group_id})
                | Q(group__isnull=True, machine__isnull=True)
            )
        for policy in rows:
            if policy.machine_id:
                self.machine_values[policy.machine_id] = policy_values(policy)
            elif policy.group_id:
                self.group_values[policy.group_id] = policy_values(policy)
            else:
                self.customer_values = policy_values(policy)
        self._cache: dict[tuple, EffectiveSettings] = {}

    def effective(self, machine_id: int, group_id: int | None) -> EffectiveSettings:
        own = self.machine_values.get(machine_id)
        key = ("machine", machine_id) if own is not None else ("group", group_id)
        if key not in self._cache:
            levels = []
            if own is not None:
                levels.append((Source("machine"), own))
            if group_id is not None:
                levels.append((Source("group"), self.group_values.get(group_id, {})))
            levels.append((Source("customer"), self.customer_values))
            self._cache[key] = merge_levels(levels)
        return self._cache[key]


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


# --- Levels as objects: naming, and effective settings after a proposed change ---------


def level_source(obj) -> Source:
    """The ``Source`` that values set on ``obj`` (customer, group or machine) carry."""
    if isinstance(obj, Machine):
        return Source("machine", obj.name)
    if isinstance(obj, MachineGroup):
        return Source("group", obj.name)
    return Source("customer")


def level_title(obj) -> str:
    """How errors name a level: 'Machine "db-01"', 'Group "Web servers"', 'Customer "Acme"'."""
    kind = type(obj).__name__.replace("MachineGroup", "Group")
    return f'{kind} "{obj.name}"'


def own_policy(obj) -> ReplicationPolicy | None:
    """The policy row stored on exactly this level, or None when it inherits everything."""
    if isinstance(obj, Machine | MachineGroup):
        return _own_policy(obj)
    return _customer_policy(obj)


def effective_after_change(customer, level_obj, own_values: Mapping[str, object]):
    """Effective settings of ``level_obj`` and of every descendant level that has its own
    policy, as they would be if ``level_obj`` stored ``own_values`` (settings → value).

    Returns ``[(obj, EffectiveSettings), ...]`` with ``level_obj`` first. Descendants
    without a policy of their own need no check: they inherit exactly what their parent
    gets, and the parent is in the list. All policies of the customer are read in one query
    so a customer-wide change costs the same for ten machines or ten thousand.
    """
    empty = dict.fromkeys(SETTINGS)
    customer_values: Mapping[str, object] = empty
    group_values: dict[int, Mapping[str, object]] = {}
    groups: dict[int, MachineGroup] = {}
    machine_rows: list[ReplicationPolicy] = []
    policies = ReplicationPolicy.objects.for_customer(customer).select_related(
        "group", "machine", "machine__group"
    )
    for policy in policies:
        if policy.machine_id:
            machine_rows.append(policy)
        elif policy.group_id:
            group_values[policy.group_id] = policy_values(policy)
            groups[policy.group_id] = policy.group
        else:
            customer_values = policy_values(policy)

    if isinstance(level_obj, MachineGroup):
        group_values[level_obj.pk] = own_values
    elif not isinstance(level_obj, Machine):
        customer_values = own_values

    def customer_chain():
        return [(Source("customer"), customer_values)]

    def group_chain(group):
        return [(Source("group", group.name), group_values.get(group.pk, empty)), *customer_chain()]

    def machine_chain(machine, values):
        above = group_chain(machine.group) if machine.group_id else customer_chain()
        return [(Source("machine", machine.name), values), *above]

    if isinstance(level_obj, Machine):
        return [(level_obj, merge_levels(machine_chain(level_obj, own_values)))]
    if isinstance(level_obj, MachineGroup):
        result = [(level_obj, merge_levels(group_chain(level_obj)))]
        below = [p for p in machine_rows if p.machine.group_id == level_obj.pk]
    else:
        result = [(level_obj, merge_levels(customer_chain()))]
        result += [
            (group, merge_levels(group_chain(group)))
            for group in sorted(groups.values(), key=lambda g: g.name)
        ]
        below = machine_rows
    for policy in sorted(below, key=lambda p: p.machine.name):
        result.append(
            (policy.machine, merge_levels(machine_chain(policy.machine, policy_values(policy))))
        )
    return result


def overrides_below(customer, level_obj) -> list:
    """Groups and machines under ``level_obj`` that store settings of their own: the page
    lists them so an admin sees which levels a change will not reach."""
    policies = ReplicationPolicy.objects.for_customer(customer).select_related("group", "machine")
    if isinstance(level_obj, Machine):
        return []
    if isinstance(level_obj, MachineGroup):
        policies = policies.filter(machine__group=level_obj)
    else:
        policies = policies.exclude(group__isnull=True, machine__isnull=True)
    return sorted(
        (p.machine or p.group for p in policies),
        key=lambda obj: (isinstance(obj, Machine), obj.name),
    )
