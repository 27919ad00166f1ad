"""Writes of replication settings: one ``ReplicationPolicy`` row per customer, group or machine.

A level that inherits everything has no row. ``policy_update`` deletes the row when every
value becomes empty and ``policy_reset`` deletes it outright, so "has a policy of its own"
always means "sets something" — which is what the descendant checks below rely on, and
what the settings pages list as overrides.

Validation happens on the effective level, not only on the values typed: after a change the
edited level and every level below it that stores its own settings must still keep at least
one snapshot. Every rule raises ``django.core.exceptions.ValidationError`` before anything
is written, inside one transaction, so a refused change leaves the database as it was.
"""

from collections.abc import Mapping
from datetime import time

from django.core.exceptions import ValidationError
from django.db import transaction

from tenants.models import Customer

from ..inheritance import DAY_NAMES, LABELS, effective_after_change, level_title, retention_problem
from ..models import (
    KEEP_FIELDS,
    MAX_INTERVAL_MINUTES,
    MIN_INTERVAL_MINUTES,
    Machine,
    MachineGroup,
    ReplicationPolicy,
)

# The model fields a caller may set; ``None`` means "inherit from the level above".
POLICY_FIELDS = (
    "enabled",
    "interval_minutes",
    "window_enabled",
    "window_start",
    "window_end",
    "window_days",
    "bandwidth_limit_mbps",
    *KEEP_FIELDS,
)

INTERVAL_MESSAGE = "The interval must be between 5 minutes and 7 days."
WINDOW_PAIR_MESSAGE = "Give both the window start and end, or leave both empty to inherit them."
WINDOW_SAME_MESSAGE = (
    "The window end must differ from its start (a window may span midnight, "
    "e.g. 22:00\N{EN DASH}06:00)."
)
WINDOW_DAYS_MESSAGE = "Choose at least one weekday, or inherit the weekdays."
BANDWIDTH_MESSAGE = "The bandwidth limit must be 0 (unlimited) or more."
KEEP_MESSAGE = "{label} must be 0 or more."
NO_SNAPSHOTS_MESSAGE = (
    "{level} would keep no snapshots: at least one keep value must be greater than 0 there "
    "(set on it or inherited)."
)
MAX_LEVELS_NAMED = 5


def policy_update(customer: Customer, level_obj, values: Mapping[str, object]):
    """Set some settings of one level; keys absent from ``values`` keep their stored value.

    ``level_obj`` is the customer itself, one of its machine groups or one of its machines.
    Returns the saved ``ReplicationPolicy``, or ``None`` when the level now inherits
    everything (its row is then deleted).
    """
    _check_level(customer, level_obj)
    unknown = sorted(set(values) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationError(f"Unknown settings: {', '.join(unknown)}.", code="unknown")
    with transaction.atomic():
        policy = _locked_policy(customer, level_obj)
        new = {name: getattr(policy, name) if policy else None for name in POLICY_FIELDS}
        new.update(values)
        new = _validated(customer, level_obj, new)
        return _store(customer, level_obj, policy, new)


def policy_check(customer: Customer, level_obj, values: Mapping[str, object]) -> None:
    """Validate a level's complete settings without writing them.

    For editors that save the row themselves (the provider admin): the same rules as
    ``policy_update``, so no path stores settings the pages would refuse.
    """
    _check_level(customer, level_obj)
    new = {name: values.get(name) for name in POLICY_FIELDS}
    _validated(customer, level_obj, new)


def policy_reset(customer: Customer, level_obj) -> None:
    """Make one level inherit every setting again (its row is deleted).

    Refused like an update when a level below would then keep no snapshots.
    """
    _check_level(customer, level_obj)
    with transaction.atomic():
        policy = _locked_policy(customer, level_obj)
        _check_retention(customer, level_obj, dict.fromkeys(POLICY_FIELDS))
        if policy is not None:
            policy.delete()


# --- Helpers -------------------------------------------------------------------------------


def _validated(customer: Customer, level_obj, values: dict) -> dict:
    if values["window_days"] is not None:
        values["window_days"] = _normalized_days(values["window_days"])
    errors = _field_errors(values)
    if errors:
        raise ValidationError(errors)
    _check_retention(customer, level_obj, values)
    return values


def _check_level(customer: Customer, level_obj) -> None:
    if isinstance(level_obj, Machine | MachineGroup):
        owner_id = level_obj.customer_id
    elif isinstance(level_obj, Customer):
        owner_id = level_obj.pk
    else:
        raise TypeError(f"Settings live on a customer, group or machine, not {level_obj!r}.")
    if owner_id != customer.pk:
        raise ValidationError(
            f"{level_title(level_obj)} does not belong to customer {customer.name}.",
            code="wrong_customer",
        )


def _locked_policy(customer: Customer, level_obj) -> ReplicationPolicy | None:
    policies = ReplicationPolicy.objects.for_customer(customer).select_for_update()
    if isinstance(level_obj, Machine):
        return policies.filter(machine=level_obj).first()
    if isinstance(level_obj, MachineGroup):
        return policies.filter(group=level_obj).first()
    return policies.filter(group__isnull=True, machine__isnull=True).first()


def _normalized_days(days) -> list[int]:
    try:
        return sorted({int(day) for day in days})
    except (TypeError, ValueError):
        return [0]  # reported as out of range by _field_errors


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field_errors(values: Mapping[str, object]) -> dict[str, list[str]]:
    """Rules on the values of one level by themselves (the retention rule needs the
    levels above and below, see ``_check_retention``)."""
    errors: dict[str, list[str]] = {}
    for name in ("enabled", "window_enabled"):
        if values[name] is not None and not isinstance(values[name], bool):
            errors[name] = [f"{LABELS[name]} must be on, off or inherited."]

    interval = values["interval_minutes"]
    if interval is not None and (
        not _is_int(interval) or not MIN_INTERVAL_MINUTES <= interval <= MAX_INTERVAL_MINUTES
    ):
        errors["interval_minutes"] = [INTERVAL_MESSAGE]

    start, end = values["window_start"], values["window_end"]
    if any(v is not None and not isinstance(v, time) for v in (start, end)):
        errors["window_start"] = ["The window start and end must be times of day."]
    elif (start is None) != (end is None):
        errors["window_start" if start is None else "window_end"] = [WINDOW_PAIR_MESSAGE]
    elif start is not None and start == end:
        errors["window_end"] = [WINDOW_SAME_MESSAGE]

    days = values["window_days"]
    if days is not None:
        if not days:
            errors["window_days"] = [WINDOW_DAYS_MESSAGE]
        elif any(day not in DAY_NAMES for day in days):
            errors["window_days"] = ["Weekdays are numbered 1 (Monday) to 7 (Sunday)."]

    bandwidth = values["bandwidth_limit_mbps"]
    if bandwidth is not None and (not _is_int(bandwidth) or bandwidth < 0):
        errors["bandwidth_limit_mbps"] = [BANDWIDTH_MESSAGE]

    for name in KEEP_FIELDS:
        keep = values[name]
        if keep is not None and (not _is_int(keep) or keep < 0):
            errors[name] = [KEEP_MESSAGE.format(label=LABELS[name])]
    return errors


def _as_settings(values: Mapping[str, object]) -> dict[str, object]:
    """Model fields → inheritance settings: the window's start and end travel as one pair."""
    settings = {k: v for k, v in values.items() if k not in ("window_start", "window_end")}
    start, end = values["window_start"], values["window_end"]
    settings["window"] = (start, end) if start is not None and end is not None else None
    return settings


def _check_retention(customer: Customer, level_obj, values: Mapping[str, object]) -> None:
    broken = [
        level_title(obj)
        for obj, effective in effective_after_change(customer, level_obj, _as_settings(values))
        if retention_problem(effective)
    ]
    if not broken:
        return
    messages = [NO_SNAPSHOTS_MESSAGE.format(level=title) for title in broken[:MAX_LEVELS_NAMED]]
    if len(broken) > MAX_LEVELS_NAMED:
        messages.append(f"… and {len(broken) - MAX_LEVELS_NAMED} more levels.")
    raise ValidationError(messages, code="no_retention")


def _store(customer: Customer, level_obj, policy: ReplicationPolicy | None, values):
    if all(value is None for value in values.values()):
        if policy is not None:
            policy.delete()
        return None
    if policy is None:
        policy = ReplicationPolicy(customer=customer)
        if isinstance(level_obj, Machine):
            policy.machine = level_obj
        elif isinstance(level_obj, MachineGroup):
            policy.group = level_obj
    for name, value in values.items():
        setattr(policy, name, value)
    policy.save()
    return policy
