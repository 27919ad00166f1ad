"""policy_update / policy_reset: the rules, the effective-level retention check, atomicity."""

from datetime import time

import pytest
from django.core.exceptions import ValidationError

from protection.inheritance import effective_for_machine
from protection.models import KEEP_FIELDS, ReplicationPolicy
from protection.services.policy import policy_reset, policy_update
from tests.factories import MachineFactory, MachineGroupFactory

ALL_ZERO = dict.fromkeys(KEEP_FIELDS, 0)


def rows(customer):
    return {
        (p.group_id, p.machine_id): {
            f.name: getattr(p, f.name) for f in p._meta.fields if f.name != "updated_at"
        }
        for p in ReplicationPolicy.objects.for_customer(customer)
    }


def errors_of(excinfo) -> str:
    return " ".join(excinfo.value.messages)


@pytest.fixture
def db01(customer, group):
    return MachineFactory(customer=customer, group=group, name="db-01")


# --- Field rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(("minutes", "ok"), [(4, False), (5, True), (10080, True), (10081, False)])
def test_interval_bounds(customer, minutes, ok):
    if ok:
        policy = policy_update(customer, customer, {"interval_minutes": minutes})
        assert policy.interval_minutes == minutes
    else:
        with pytest.raises(ValidationError) as excinfo:
            policy_update(customer, customer, {"interval_minutes": minutes})
        assert excinfo.value.message_dict == {
            "interval_minutes": ["The interval must be between 5 minutes and 7 days."]
        }
        assert rows(customer) == {}


def test_window_end_must_differ_from_start(customer):
    with pytest.raises(ValidationError) as excinfo:
        policy_update(customer, customer, {"window_start": time(8), "window_end": time(8)})
    assert excinfo.value.message_dict["window_end"] == [
        "The window end must differ from its start (a window may span midnight, "
        "e.g. 22:00\N{EN DASH}06:00)."
    ]
    assert rows(customer) == {}


def test_window_across_midnight_is_accepted(customer, machine):
    policy_update(
        customer,
        customer,
        {"window_enabled": True, "window_start": time(22), "window_end": time(6)},
    )
    effective = effective_for_machine(machine)
    assert effective["window"] == (time(22), time(6))
    assert effective["window_enabled"] is True


@pytest.mark.parametrize(
    "values", [{"window_start": time(22)}, {"window_end": time(6)}], ids=["start", "end"]
)
def test_window_needs_both_times_or_neither(customer, values):
    with pytest.raises(ValidationError, match="Give both the window start and end"):
        policy_update(customer, customer, values)


def test_weekdays_need_one_day_and_are_normalized(customer):
    with pytest.raises(ValidationError) as excinfo:
        policy_update(customer, customer, {"window_days": []})
    assert "at least one weekday" in errors_of(excinfo)
    with pytest.raises(ValidationError, match="1 \\(Monday\\) to 7"):
        policy_update(customer, customer, {"window_days": [0, 8]})
    assert policy_update(customer, customer, {"window_days": [7, 1, 1]}).window_days == [1, 7]


@pytest.mark.parametrize("name", KEEP_FIELDS)
def test_negative_keep_values_are_rejected(customer, name):
    with pytest.raises(ValidationError) as excinfo:
        policy_update(customer, customer, {name: -1})
    assert excinfo.value.message_dict[name] == [
        f"{name.replace('_', ' ').capitalize()} must be 0 or more."
    ]
    assert rows(customer) == {}


def test_negative_bandwidth_is_rejected_zero_means_unlimited(customer):
    with pytest.raises(ValidationError, match="0 \\(unlimited\\) or more"):
        policy_update(customer, customer, {"bandwidth_limit_mbps": -5})
    assert policy_update(customer, customer, {"bandwidth_limit_mbps": 0}).bandwidth_limit_mbps == 0


def test_unknown_setting_and_wrong_types_are_rejected(customer):
    with pytest.raises(ValidationError, match="Unknown settings: colour"):
        policy_update(customer, customer, {"colour": "blue"})
    with pytest.raises(ValidationError, match="interval must be between"):
        policy_update(customer, customer, {"interval_minutes": "60"})
    with pytest.raises(ValidationError, match="on, off or inherited"):
        policy_update(customer, customer, {"enabled": "yes"})


# --- Retention at the effective level -------------------------------------------------------


def test_all_zero_retention_at_the_level_is_rejected(customer, group):
    with pytest.raises(ValidationError) as excinfo:
        policy_update(customer, customer, ALL_ZERO)
    assert 'Customer "Acme" would keep no snapshots' in errors_of(excinfo)
    with pytest.raises(ValidationError) as excinfo:
        policy_update(customer, group, ALL_ZERO)
    assert 'Group "Web servers" would keep no snapshots' in errors_of(excinfo)
    assert rows(customer) == {}


def test_zeros_that_only_add_up_with_inherited_zeros_are_rejected(customer, group):
    """The rule looks at effective values: the group's zeros plus the customer's zeros."""
    policy_update(customer, customer, {"keep_last": 0, "keep_daily": 0, "keep_weekly": 0})
    before = rows(customer)
    with pytest.raises(ValidationError, match='Group "Web servers" would keep no snapshots'):
        policy_update(customer, group, {"keep_monthly": 0})
    assert rows(customer) == before


def test_customer_change_rejected_when_a_machine_below_would_keep_nothing(customer, db01):
    policy_update(customer, db01, {"keep_last": 0, "keep_daily": 0, "keep_weekly": 0})
    policy_update(customer, customer, {"keep_last": 10})
    before = rows(customer)
    with pytest.raises(ValidationError) as excinfo:
        policy_update(customer, customer, {"keep_monthly": 0, "interval_minutes": 30})
    assert 'Machine "db-01" would keep no snapshots' in errors_of(excinfo)
    assert 'Customer "Acme"' not in errors_of(excinfo)
    assert rows(customer) == before  # nothing saved, not even the interval


def test_customer_change_rejected_for_machine_with_all_zero_overrides(customer, db01):
    ReplicationPolicy.objects.create(customer=customer, machine=db01, **ALL_ZERO)
    with pytest.raises(ValidationError, match='Machine "db-01" would keep no snapshots'):
        policy_update(customer, customer, {"keep_last": 5})
    assert rows(customer).keys() == {(None, db01.pk)}
    # Fixing the machine itself is allowed, and then the customer change goes through.
    policy_update(customer, db01, {"keep_last": 1})
    policy_update(customer, customer, {"keep_last": 5})


def test_group_change_checks_only_its_own_machines(customer, group, db01):
    elsewhere = MachineFactory(customer=customer, group=MachineGroupFactory(customer=customer))
    policy_update(customer, elsewhere, {"keep_last": 0, "keep_daily": 0, "keep_weekly": 0})
    policy_update(customer, db01, {"keep_last": 0, "keep_daily": 0, "keep_weekly": 0})
    with pytest.raises(ValidationError, match='Machine "db-01"'):
        policy_update(customer, group, {"keep_monthly": 0, "keep_hourly": 0})
    policy_update(customer, group, {"keep_monthly": 0, "keep_hourly": 4})


def test_many_broken_levels_are_summarized(customer, group):
    for n in range(7):
        machine = MachineFactory(customer=customer, group=group, name=f"m{n}")
        policy_update(customer, machine, {"keep_last": 0, "keep_daily": 0, "keep_weekly": 0})
    with pytest.raises(ValidationError) as excinfo:
        policy_update(customer, customer, {"keep_monthly": 0})
    messages = excinfo.value.messages
    assert len(messages) == 6
    assert messages[-1] == "… and 2 more levels."


# --- Storing, partial updates, reset --------------------------------------------------------


def test_partial_update_keeps_other_values_and_empty_level_has_no_row(customer, group):
    policy = policy_update(customer, group, {"keep_last": 3, "interval_minutes": 15})
    assert (policy.group, policy.machine) == (group, None)
    policy_update(customer, group, {"keep_last": None})
    assert rows(customer)[(group.pk, None)]["interval_minutes"] == 15
    assert rows(customer)[(group.pk, None)]["keep_last"] is None
    assert policy_update(customer, group, {"interval_minutes": None}) is None
    assert rows(customer) == {}


def test_levels_get_their_own_rows(customer, group, machine):
    policy_update(customer, customer, {"keep_last": 1})
    policy_update(customer, group, {"keep_last": 2})
    policy_update(customer, machine, {"keep_last": 3})
    assert set(rows(customer)) == {(None, None), (group.pk, None), (None, machine.pk)}
    assert effective_for_machine(machine)["keep_last"] == 3


def test_objects_of_another_customer_are_refused(customer, other_customer):
    foreign_group = MachineGroupFactory(customer=other_customer)
    foreign_machine = MachineFactory(customer=other_customer)
    for level in (other_customer, foreign_group, foreign_machine):
        with pytest.raises(ValidationError, match="does not belong to customer Acme"):
            policy_update(customer, level, {"keep_last": 1})
        with pytest.raises(ValidationError):
            policy_reset(customer, level)
    assert ReplicationPolicy.objects.all_customers().count() == 0


def test_reset_clears_the_level(customer, group):
    policy_update(customer, group, {"keep_last": 3, "enabled": False})
    policy_reset(customer, group)
    assert rows(customer) == {}
    policy_reset(customer, group)  # resetting an inheriting level is a no-op


def test_reset_refused_when_a_machine_below_relies_on_the_level(customer, group, db01):
    policy_update(
        customer,
        customer,
        {"keep_last": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_yearly": 1},
    )
    policy_update(customer, group, {"keep_daily": 7})
    policy_update(customer, db01, {"keep_yearly": 0})
    before = rows(customer)
    with pytest.raises(ValidationError, match='Machine "db-01" would keep no snapshots'):
        policy_reset(customer, group)
    assert rows(customer) == before
