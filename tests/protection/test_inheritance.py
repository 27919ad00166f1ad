"""Settings inheritance: the merge rule (property-based) and the loaders that feed it."""

from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protection.inheritance import (
    DEFAULT_SOURCE,
    DEFAULTS,
    SETTINGS,
    Source,
    display_value,
    effective_after_change,
    effective_for_customer,
    effective_for_group,
    effective_for_machine,
    inherited_for,
    merge_levels,
    overrides_below,
    policy_values,
    retention_problem,
)
from protection.models import KEEP_FIELDS, ReplicationPolicy
from tests.factories import MachineFactory, MachineGroupFactory

# --- Strategies ------------------------------------------------------------------------------

times = st.times().map(lambda t: t.replace(second=0, microsecond=0))
VALUE_STRATEGIES = {
    "enabled": st.booleans(),
    "interval_minutes": st.integers(min_value=5, max_value=7 * 24 * 60),
    "window_enabled": st.booleans(),
    "window": st.tuples(times, times).filter(lambda pair: pair[0] != pair[1]),
    "window_days": st.lists(st.integers(1, 7), min_size=1, max_size=7, unique=True).map(sorted),
    "bandwidth_limit_mbps": st.integers(min_value=0, max_value=10_000),
    **{name: st.integers(min_value=0, max_value=1000) for name in KEEP_FIELDS},
}
assert set(VALUE_STRATEGIES) == set(SETTINGS)

level_values = st.fixed_dictionaries(
    {name: st.none() | strategy for name, strategy in VALUE_STRATEGIES.items()}
)
EMPTY = dict.fromkeys(SETTINGS)


@st.composite
def level_stacks(draw):
    """Most specific first, like the loaders build them: [machine,] [group,] customer."""
    stack = []
    if draw(st.booleans()):
        stack.append(
            (Source("machine", draw(st.sampled_from(["db-01", "web-01"]))), draw(level_values))
        )
    if draw(st.booleans()):
        stack.append(
            (Source("group", draw(st.sampled_from(["Web servers", "DB"]))), draw(level_values))
        )
    if draw(st.booleans()):
        stack.append((Source("customer"), draw(level_values)))
    return stack


def as_pairs(effective):
    return {name: (effective[name], effective.source(name)) for name in SETTINGS}


# --- merge_levels properties ----------------------------------------------------------------


@given(level_stacks())
def test_effective_value_is_first_non_none_from_most_specific_level(levels):
    effective = merge_levels(levels)
    for name in SETTINGS:
        setters = [(source, values[name]) for source, values in levels if values[name] is not None]
        if setters:
            source, value = setters[0]
            assert effective[name] == value
            assert effective.source(name) == source
        else:
            assert effective[name] == DEFAULTS[name]
            assert effective.source(name) == DEFAULT_SOURCE


@given(level_stacks(), st.integers(min_value=0, max_value=3))
def test_a_level_that_inherits_everything_hides_nothing(levels, position):
    position = min(position, len(levels))
    with_gap = [*levels[:position], (Source("group", "empty"), EMPTY), *levels[position:]]
    assert as_pairs(merge_levels(with_gap)) == as_pairs(merge_levels(levels))


@given(level_stacks(), st.data())
def test_none_at_a_level_never_hides_a_value_below_it(levels, data):
    below = data.draw(level_values)
    source = Source("customer", "below")
    effective = merge_levels([*levels, (source, below)])
    for name in SETTINGS:
        if below[name] is not None and all(values[name] is None for _, values in levels):
            assert effective[name] == below[name]
            assert effective.source(name) == source


@given(level_stacks(), st.sampled_from(SETTINGS), st.data())
def test_the_most_specific_level_always_wins(levels, name, data):
    value = data.draw(VALUE_STRATEGIES[name])
    machine = Source("machine", "db-01")
    effective = merge_levels([(machine, {**EMPTY, name: value}), *levels])
    assert effective[name] == value
    assert effective.source(name) == machine
    # ...and only that field changes.
    before = as_pairs(merge_levels(levels))
    after = as_pairs(effective)
    assert {k: v for k, v in after.items() if k != name} == {
        k: v for k, v in before.items() if k != name
    }


@given(level_stacks())
def test_repeating_levels_is_idempotent(levels):
    assert as_pairs(merge_levels(levels + levels)) == as_pairs(merge_levels(levels))


@given(level_stacks(), level_stacks())
def test_collapsing_lower_levels_into_one_gives_the_same_values(upper, lower):
    """Associativity: merging [upper..., lower...] equals merging upper over the
    already-merged lower levels (as one level that sets what the lower ones set)."""
    merged_lower = merge_levels(lower)
    collapsed = {
        name: None if merged_lower.source(name) == DEFAULT_SOURCE else merged_lower[name]
        for name in SETTINGS
    }
    whole = merge_levels([*upper, *lower])
    stepwise = merge_levels([*upper, (Source("customer"), collapsed)])
    assert {n: whole[n] for n in SETTINGS} == {n: stepwise[n] for n in SETTINGS}


@given(level_stacks())
def test_merging_a_fully_resolved_level_returns_it(levels):
    effective = merge_levels(levels)
    resolved = {name: effective[name] for name in SETTINGS}
    again = merge_levels([(Source("machine", "x"), resolved)])
    assert {n: again[n] for n in SETTINGS} == resolved


def test_no_levels_give_the_built_in_defaults():
    effective = merge_levels([])
    assert {n: effective[n] for n in SETTINGS} == DEFAULTS
    assert all(effective.source(n) == DEFAULT_SOURCE for n in SETTINGS)
    assert retention_problem(effective) is None


@given(st.fixed_dictionaries({name: st.integers(0, 3) for name in KEEP_FIELDS}))
def test_retention_problem_only_when_every_keep_value_is_zero(keeps):
    effective = merge_levels([(Source("customer"), {**EMPTY, **keeps})])
    assert (retention_problem(effective) is not None) == (sum(keeps.values()) == 0)


# --- Display ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("interval_minutes", 60, "1 hour"),
        ("interval_minutes", 90, "90 minutes"),
        ("interval_minutes", 2880, "2 days"),
        ("window", (time(22), time(6)), "22:00\N{EN DASH}06:00 (spans midnight)"),
        ("window", (time(8), time(17, 30)), "08:00\N{EN DASH}17:30"),
        ("window_days", [1, 2, 3, 4, 5], "Mon\N{EN DASH}Fri"),
        ("window_days", [6, 1], "Mon, Sat"),
        ("window_days", [1, 2, 3, 4, 5, 6, 7], "Every day"),
        ("bandwidth_limit_mbps", 0, "Unlimited"),
        ("bandwidth_limit_mbps", 100, "100 Mbit/s"),
        ("enabled", False, "Disabled"),
        ("window_enabled", True, "Only inside the window"),
        ("keep_daily", 14, "14"),
    ],
)
def test_display_value(name, value, shown):
    assert display_value(name, value) == shown


def test_source_labels():
    assert Source("group", "Web servers").label == "group Web servers"
    assert Source("customer").label == "customer settings"
    assert DEFAULT_SOURCE.label == "built-in default"


# --- Loaders (database) ----------------------------------------------------------------------


def _policy(customer, **values):
    return ReplicationPolicy.objects.create(customer=customer, **values)


def test_policy_values_pairs_the_window(customer):
    policy = _policy(customer, window_start=time(22), window_end=time(6), keep_last=3)
    values = policy_values(policy)
    assert values["window"] == (time(22), time(6))
    assert values["keep_last"] == 3
    assert values["enabled"] is None
    half = ReplicationPolicy(customer=customer, window_start=time(22))
    assert policy_values(half)["window"] is None
    assert policy_values(None) == EMPTY


def test_machine_inherits_through_group_and_customer(customer, group, machine):
    _policy(customer, keep_last=5, interval_minutes=30)
    _policy(customer, group=group, keep_last=7)
    _policy(customer, machine=machine, window_days=[1, 2])
    effective = effective_for_machine(machine)
    assert effective["keep_last"] == 7
    assert effective.source("keep_last") == Source("group", "Web servers")
    assert effective["interval_minutes"] == 30
    assert effective.source("interval_minutes") == Source("customer")
    assert effective["window_days"] == [1, 2]
    assert effective.source("window_days") == Source("machine", "web-01")
    assert effective["keep_daily"] == DEFAULTS["keep_daily"]
    assert effective_for_group(group)["keep_last"] == 7
    assert effective_for_customer(customer)["keep_last"] == 5


def test_machine_without_group_inherits_from_customer(customer):
    machine = MachineFactory(customer=customer, group=None)
    _policy(customer, keep_last=5)
    assert effective_for_machine(machine).source("keep_last") == Source("customer")


def test_inherited_for_leaves_out_the_level_itself(customer, group, machine):
    _policy(customer, group=group, keep_last=7)
    _policy(customer, machine=machine, keep_last=1)
    assert inherited_for(machine)["keep_last"] == 7
    assert inherited_for(group)["keep_last"] == DEFAULTS["keep_last"]
    assert inherited_for(customer).source("keep_last") == DEFAULT_SOURCE


def test_effective_after_change_lists_descendants_with_own_policies(customer, group, machine):
    other_group = MachineGroupFactory(customer=customer, name="DB")
    db = MachineFactory(customer=customer, group=other_group, name="db-01")
    _policy(customer, group=other_group, keep_daily=3)
    _policy(customer, machine=db, keep_last=0)
    _policy(customer, machine=machine, keep_last=2)
    proposed = {**EMPTY, "keep_weekly": 1}

    for_customer = effective_after_change(customer, customer, proposed)
    assert [obj for obj, _ in for_customer] == [customer, other_group, db, machine]
    assert for_customer[0][1]["keep_weekly"] == 1
    assert dict(for_customer)[db]["keep_weekly"] == 1  # reaches the machine below

    for_group = effective_after_change(customer, group, proposed)
    assert [obj for obj, _ in for_group] == [group, machine]

    for_machine = effective_after_change(customer, db, proposed)
    assert [obj for obj, _ in for_machine] == [db]
    assert for_machine[0][1]["keep_last"] == DEFAULTS["keep_last"]  # override replaced
    assert for_machine[0][1].source("keep_daily") == Source("group", "DB")


def test_overrides_below(customer, group, machine):
    other = MachineFactory(customer=customer, group=None, name="lonely")
    _policy(customer, group=group, keep_last=1)
    _policy(customer, machine=machine, keep_last=1)
    _policy(customer, machine=other, keep_last=1)
    assert overrides_below(customer, customer) == [group, other, machine]
    assert overrides_below(customer, group) == [machine]
    assert overrides_below(customer, machine) == []
