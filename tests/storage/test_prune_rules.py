"""Prune rules (storage.prune): PBS semantics, checked by properties and by known examples.

The properties run against random snapshot histories; ``pbs_reference`` is a literal port of
PBS ``compute_prune_info`` / ``mark_selections`` (marks in a dict, as prune.rs keeps them)
that the implementation must agree with on every input.
"""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.prune import (
    REASON_KEEP_ALL,
    REASON_PINNED,
    REASON_PROTECTED,
    RULE_ORDER,
    KeepRules,
    PruneCandidate,
    period_id,
    plan_prune,
    rule_reason,
)

BERLIN = ZoneInfo("Europe/Berlin")
ZONES = [UTC, BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def candidates_at(*times, protected=()):
    return [PruneCandidate(i, t, i in protected) for i, t in enumerate(times)]


# --- reference: PBS prune.rs, transcribed --------------------------------------------------


def pbs_reference(candidates, rules, tz, pinned=frozenset()):
    """Marks as PBS computes them: "keep", "remove", "protected", "pinned" (≈ KeepPartial)."""
    ordered = sorted(candidates, key=lambda c: (c.created_at, str(c.id)), reverse=True)
    mark = {c.id: "pinned" for c in ordered if c.id in pinned and not c.protected}
    if not rules.active():
        return {c.id: "keep" if not c.protected else "protected" for c in ordered}

    def mark_selections(keep, select_id):
        include_hash = set()
        already_included = {select_id(c) for c in ordered if mark.get(c.id) == "keep"}
        for c in ordered:
            if c.id in mark:
                continue
            if c.protected:
                mark[c.id] = "protected"
                continue
            sel_id = select_id(c)
            if sel_id in already_included:
                continue
            if sel_id not in include_hash:
                if len(include_hash) >= keep:
                    break
                include_hash.add(sel_id)
                mark[c.id] = "keep"
            else:
                mark[c.id] = "remove"

    formats = {
        "hourly": "%Y/%m/%d/%H",
        "daily": "%Y/%m/%d",
        "weekly": "%G/%V",
        "monthly": "%Y/%m",
        "yearly": "%Y",
    }
    for rule in RULE_ORDER:
        keep = getattr(rules, rule)
        if not keep:
            continue
        if rule == "last":
            mark_selections(keep, lambda c: c.id)
        else:
            fmt = formats[rule]
            mark_selections(keep, lambda c, fmt=fmt: c.created_at.astimezone(tz).strftime(fmt))
    return {c.id: "protected" if c.protected else mark.get(c.id, "remove") for c in ordered}


# --- strategies ----------------------------------------------------------------------------

START = datetime(2019, 1, 1)
END = datetime(2031, 1, 1)

# Times clustered so that several snapshots share hours, days and weeks: a base instant
# plus offsets of minutes to months.
offsets = st.one_of(
    st.integers(0, 59).map(lambda m: timedelta(minutes=m)),
    st.integers(0, 72).map(lambda h: timedelta(hours=h)),
    st.builds(lambda d, h: timedelta(days=d, hours=h), st.integers(0, 60), st.integers(0, 23)),
    st.integers(0, 800).map(lambda d: timedelta(days=d)),
)


@st.composite
def histories(draw, max_size=40):
    base = draw(st.datetimes(START, END - timedelta(days=900), timezones=st.just(UTC)))
    times = draw(st.lists(offsets, min_size=0, max_size=max_size))
    protected = draw(st.lists(st.booleans(), min_size=len(times), max_size=len(times)))
    return [
        PruneCandidate(i, base + off, prot and draw(st.integers(0, 4)) == 0)
        for i, (off, prot) in enumerate(zip(times, protected, strict=True))
    ]


@st.composite
def schedules(draw):
    """A regular replication schedule with gaps: every N hours for weeks to years, the way
    real histories look (many weeks and months straddle each other's boundaries)."""
    base = draw(st.datetimes(START, END - timedelta(days=900), timezones=st.just(UTC)))
    every = timedelta(hours=draw(st.sampled_from([1, 3, 7, 24, 50, 24 * 9])))
    count = draw(st.integers(0, 120))
    missing = draw(st.sets(st.integers(0, max(count - 1, 0)), max_size=count // 3))
    protected = draw(st.sets(st.integers(0, max(count - 1, 0)), max_size=3))
    kept = [i for i in range(count) if i not in missing]
    return [PruneCandidate(i, base + i * every, i in protected) for i in kept]


any_history = st.one_of(histories(), schedules())
small = st.integers(0, 6)
keep_rules = st.builds(
    KeepRules, last=small, hourly=small, daily=small, weekly=small, monthly=small, yearly=small
)
zones = st.sampled_from(ZONES)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pinned(draw, history):
    ids = [c.id for c in history]
    return frozenset(draw(st.lists(st.sampled_from(ids), max_size=3))) if ids else frozenset()


def _select(rule, candidate, tz):
    return candidate.id if rule == "last" else period_id(rule, candidate.created_at, tz)


# --- properties ----------------------------------------------------------------------------


@PROPERTY
@given(history=any_history, rules=keep_rules, tz=zones, data=st.data())
def test_matches_the_pbs_reference(history, rules, tz, data):
    pinned = _pinned(data.draw, history)
    plan = plan_prune(history, rules, tz, pinned)
    marks = pbs_reference(history, rules, tz, pinned)
    assert set(plan.remove) == {i for i, m in marks.items() if m == "remove"}
    assert set(plan.keep) == {i for i, m in marks.items() if m != "remove"}
    assert set(plan.keep) | set(plan.remove) == {c.id for c in history}
    assert not set(plan.keep) & set(plan.remove)


@PROPERTY
@given(history=any_history, rules=keep_rules, tz=zones, data=st.data())
def test_no_rule_keeps_more_periods_than_allowed(history, rules, tz, data):
    plan = plan_prune(history, rules, tz, _pinned(data.draw, history))
    by_id = {c.id: c for c in history}
    for rule in RULE_ORDER:
        kept = [by_id[i] for i, reason in plan.keep.items() if reason == rule_reason(rule)]
        periods = {_select(rule, c, tz) for c in kept}
        assert len(periods) == len(kept), f"{rule} kept two snapshots of one period"
        assert len(periods) <= getattr(rules, rule)


@PROPERTY
@given(history=any_history, rules=keep_rules, tz=zones, data=st.data())
def test_every_rule_keeps_the_newest_of_its_period(history, rules, tz, data):
    """A snapshot kept by rule r is the newest of its r-period among the candidates that
    were still undecided when r ran: every newer one of that period is protected, pinned or
    removed (by an earlier rule), and no earlier rule kept one of that period."""
    pinned = _pinned(data.draw, history)
    plan = plan_prune(history, rules, tz, pinned)
    position = {snapshot_id: n for n, snapshot_id in enumerate(plan.order)}
    removed = set(plan.remove)
    by_id = {c.id: c for c in history}
    for kept_id, reason in plan.keep.items():
        if not reason.startswith("keep-"):
            continue
        rule = reason.removeprefix("keep-")
        earlier = {rule_reason(r) for r in RULE_ORDER[: RULE_ORDER.index(rule)]}
        period = _select(rule, by_id[kept_id], tz)
        for other in history:
            if other.id == kept_id or _select(rule, other, tz) != period:
                continue
            assert plan.keep.get(other.id) not in earlier
            if position[other.id] < position[kept_id]:
                assert other.protected or other.id in pinned or other.id in removed


@PROPERTY
@given(history=any_history, rules=keep_rules, tz=zones, data=st.data(), seed=st.integers())
def test_result_is_independent_of_input_order(history, rules, tz, data, seed):
    pinned = _pinned(data.draw, history)
    shuffled = list(history)
    random.Random(seed).shuffle(shuffled)
    first = plan_prune(history, rules, tz, pinned)
    second = plan_prune(shuffled, rules, tz, pinned)
    assert first.keep == second.keep
    assert first.remove == second.remove
    assert first.order == second.order


@PROPERTY
@given(history=any_history, rules=keep_rules, tz=zones, data=st.data())
def test_protected_and_pinned_are_always_kept(history, rules, tz, data):
    pinned = _pinned(data.draw, history)
    plan = plan_prune(history, rules, tz, pinned)
    for c in history:
        if c.protected:
            assert plan.keep[c.id] == REASON_PROTECTED
        elif c.id in pinned:
            assert plan.keep[c.id] == REASON_PINNED


@PROPERTY
@given(history=any_history, rules=keep_rules, tz=zones)
def test_the_newest_snapshot_survives_any_rule(history, rules, tz):
    plan = plan_prune(history, rules, tz)
    if history:
        assert plan.order[0] in plan.keep


@PROPERTY
@given(history=any_history, n=st.integers(1, 50), tz=zones)
def test_keep_last_alone_keeps_exactly_the_n_newest(history, n, tz):
    history = [PruneCandidate(c.id, c.created_at) for c in history]  # none protected
    plan = plan_prune(history, KeepRules(last=n), tz)
    assert plan.order[:n] == [i for i in plan.order if i in plan.keep]
    assert len(plan.keep) == min(n, len(history))
    assert set(plan.keep.values()) <= {"keep-last"}


@PROPERTY
@given(
    history=any_history,
    rule=st.sampled_from(RULE_ORDER[1:]),
    n=st.integers(1, 8),
    tz=zones,
)
def test_a_single_rule_keeps_the_newest_of_the_n_newest_periods(history, rule, n, tz):
    history = [PruneCandidate(c.id, c.created_at) for c in history]
    plan = plan_prune(history, KeepRules(**{rule: n}), tz)
    by_id = {c.id: c for c in history}
    expected, periods = [], []
    for snapshot_id in plan.order:
        period = period_id(rule, by_id[snapshot_id].created_at, tz)
        if period not in periods:
            periods.append(period)
            if len(periods) <= n:
                expected.append(snapshot_id)
    assert [i for i in plan.order if i in plan.keep] == expected


@PROPERTY
@given(history=any_history, tz=zones)
def test_no_rule_set_keeps_everything(history, tz):
    plan = plan_prune(history, KeepRules(), tz)
    assert plan.keeps_all
    assert plan.remove == []
    for c in history:
        assert plan.keep[c.id] == (REASON_PROTECTED if c.protected else REASON_KEEP_ALL)


# --- PBS's own examples (proxmox-backup tests/prune.rs), in UTC ----------------------------

SIMPLE = [utc(2019, 12, 2, 11, 59, 15), utc(2019, 12, 3, 11, 59, 15)]
SIMPLE += [utc(2019, 12, 4, 11, 59, 15), utc(2019, 12, 4, 12, 59, 15)]

SIMPLE2 = [
    utc(2018, 11, 15, 11, 59, 15),
    utc(2019, 11, 15, 11, 59, 15),
    utc(2019, 11, 21, 11, 59, 15),
    utc(2019, 11, 22, 11, 59, 15),
    utc(2019, 11, 29, 11, 59, 15),
    utc(2019, 12, 1, 11, 59, 15),
    utc(2019, 12, 2, 11, 59, 15),
    utc(2019, 12, 3, 11, 59, 15),
    utc(2019, 12, 4, 11, 59, 15),
]

HOURLY = [
    utc(2019, 11, 15, 9, 39, 15),
    utc(2019, 11, 15, 10, 49, 15),
    utc(2019, 11, 15, 10, 59, 15),
    utc(2019, 11, 15, 11, 39, 15),
    utc(2019, 11, 15, 11, 49, 15),
    utc(2019, 11, 15, 11, 59, 15),
]


def kept_times(times, **rules):
    plan = plan_prune(candidates_at(*times), KeepRules(**rules), UTC)
    return sorted(times[i] for i in plan.keep)


def removed_times(times, **rules):
    plan = plan_prune(candidates_at(*times), KeepRules(**rules), UTC)
    return sorted(times[i] for i in plan.remove)


@pytest.mark.parametrize(
    ("rules", "removed"),
    [
        ({"last": 4}, []),
        ({"last": 3}, SIMPLE[:1]),
        ({"last": 2}, SIMPLE[:2]),
        ({"last": 1}, SIMPLE[:3]),
        ({"last": 2, "daily": 2}, []),
        ({"daily": 3}, [SIMPLE[2]]),
        ({"daily": 2}, [SIMPLE[0], SIMPLE[2]]),
        ({"weekly": 5}, SIMPLE[:3]),
        ({"daily": 1, "weekly": 5}, SIMPLE[:3]),
        ({"monthly": 6}, SIMPLE[:3]),
        ({"yearly": 7}, SIMPLE[:3]),
        ({"weekly": 5, "monthly": 6, "yearly": 7}, SIMPLE[:3]),
    ],
)
def test_pbs_simple_examples(rules, removed):
    assert removed_times(SIMPLE, **rules) == removed


@pytest.mark.parametrize(
    ("rules", "kept"),
    [
        ({"daily": 1}, [SIMPLE2[8]]),
        ({"last": 1, "daily": 1}, [SIMPLE2[7], SIMPLE2[8]]),
        ({"daily": 1, "weekly": 1}, [SIMPLE2[5], SIMPLE2[8]]),
        ({"daily": 1, "weekly": 1, "monthly": 1}, [SIMPLE2[3], SIMPLE2[5], SIMPLE2[8]]),
        ({"monthly": 1, "yearly": 1}, [SIMPLE2[0], SIMPLE2[8]]),
    ],
)
def test_pbs_simple2_examples(rules, kept):
    assert kept_times(SIMPLE2, **rules) == kept


def test_pbs_hourly_examples():
    assert removed_times(HOURLY, hourly=3) == [HOURLY[1], HOURLY[3], HOURLY[4]]
    assert kept_times(HOURLY, hourly=2) == [HOURLY[2], HOURLY[5]]


def test_reasons_name_the_rule_that_keeps():
    plan = plan_prune(candidates_at(*SIMPLE2), KeepRules(last=1, daily=1, weekly=1), UTC)
    assert plan.keep == {8: "keep-last", 7: "keep-daily", 5: "keep-weekly"}
    assert plan.remove == [6, 4, 3, 2, 1, 0]


def test_an_earlier_rule_fills_the_period_a_later_rule_skips():
    # keep-last keeps today; keep-daily 2 then keeps two MORE days, not today again.
    times = [utc(2024, 5, d, h) for d in (1, 2, 3) for h in (8, 20)]
    plan = plan_prune(candidates_at(*times), KeepRules(last=1, daily=2), UTC)
    assert {times[i]: r for i, r in plan.keep.items()} == {
        utc(2024, 5, 3, 20): "keep-last",
        utc(2024, 5, 2, 20): "keep-daily",
        utc(2024, 5, 1, 20): "keep-daily",
    }


# --- protected and pinned ------------------------------------------------------------------


def test_protected_snapshot_does_not_count_for_a_rule():
    times = [utc(2024, 5, 1, 10), utc(2024, 5, 2, 10), utc(2024, 5, 3, 10)]
    plan = plan_prune(candidates_at(*times, protected={2}), KeepRules(last=1), UTC)
    assert plan.keep == {2: REASON_PROTECTED, 1: "keep-last"}
    assert plan.remove == [0]


def test_pinned_base_is_kept_and_does_not_fill_a_period():
    times = [utc(2024, 5, 1, 10), utc(2024, 5, 3, 9), utc(2024, 5, 3, 10)]
    plan = plan_prune(candidates_at(*times), KeepRules(daily=1), UTC, pinned={2})
    assert plan.keep == {2: REASON_PINNED, 1: "keep-daily"}
    assert plan.remove == [0]


def test_pinned_ids_that_are_not_candidates_are_ignored():
    plan = plan_prune(candidates_at(utc(2024, 1, 1)), KeepRules(last=1), UTC, pinned={"x"})
    assert plan.keep == {0: "keep-last"}


# --- calendars: ISO weeks, time zones, daylight saving time --------------------------------


@pytest.mark.parametrize(
    ("moment", "week"),
    [
        (utc(2024, 12, 29, 12), "2024/52"),  # Sunday
        (utc(2024, 12, 30, 12), "2025/01"),  # Monday of ISO week 1 of 2025
        (utc(2024, 12, 31, 12), "2025/01"),
        (utc(2021, 1, 1, 12), "2020/53"),  # Friday, still in 2020's week 53
        (utc(2021, 1, 3, 12), "2020/53"),
        (utc(2021, 1, 4, 12), "2021/01"),
        (utc(2026, 12, 31, 12), "2026/53"),
        (utc(2027, 1, 1, 12), "2026/53"),
    ],
)
def test_iso_week_period(moment, week):
    assert period_id("weekly", moment, UTC) == week


def test_weekly_keeps_one_snapshot_across_new_year_in_the_same_iso_week():
    times = [utc(2024, 12, 29, 12), utc(2024, 12, 30, 12), utc(2025, 1, 1, 12)]
    plan = plan_prune(candidates_at(*times), KeepRules(weekly=5), UTC)
    assert plan.keep == {2: "keep-weekly", 0: "keep-weekly"}
    assert plan.remove == [1]


def test_yearly_uses_the_calendar_year_not_the_iso_year():
    times = [utc(2024, 12, 31, 12), utc(2025, 1, 1, 12)]
    plan = plan_prune(candidates_at(*times), KeepRules(yearly=5), UTC)
    assert set(plan.keep) == {0, 1}


def test_periods_use_the_customer_time_zone():
    # 23:30 UTC on Dec 29 is already Monday Dec 30 in Berlin: ISO week 1 of 2025.
    moment = utc(2024, 12, 29, 23, 30)
    assert period_id("weekly", moment, UTC) == "2024/52"
    assert period_id("weekly", moment, BERLIN) == "2025/01"
    assert period_id("daily", moment, BERLIN) == "2024/12/30"
    # Two snapshots of one Berlin day are two UTC days.
    times = [utc(2024, 6, 1, 21, 30), utc(2024, 6, 1, 22, 30)]  # 23:30 and 00:30 CEST
    assert len(plan_prune(candidates_at(*times), KeepRules(daily=5), UTC).keep) == 1
    assert len(plan_prune(candidates_at(*times), KeepRules(daily=5), BERLIN).keep) == 2


def test_hourly_across_the_fall_back_hour_in_berlin():
    """On 2024-10-27 Berlin's clocks go from 03:00 CEST back to 02:00 CET: 00:00-01:59 UTC
    are both 02:xx local. Like PBS (local wall clock), keep-hourly sees one period there."""
    times = [
        utc(2024, 10, 26, 23, 30),  # 01:30 CEST
        utc(2024, 10, 27, 0, 10),  # 02:10 CEST
        utc(2024, 10, 27, 0, 50),  # 02:50 CEST
        utc(2024, 10, 27, 1, 10),  # 02:10 CET (the repeated hour)
        utc(2024, 10, 27, 1, 50),  # 02:50 CET
        utc(2024, 10, 27, 2, 10),  # 03:10 CET
    ]
    assert {period_id("hourly", t, BERLIN) for t in times[1:5]} == {"2024/10/27/02"}
    plan = plan_prune(candidates_at(*times), KeepRules(hourly=24), BERLIN)
    assert plan.keep == {5: "keep-hourly", 4: "keep-hourly", 0: "keep-hourly"}
    assert plan.remove == [3, 2, 1]
    # In UTC the same snapshots span four distinct hours (23, 00, 01, 02).
    assert len(plan_prune(candidates_at(*times), KeepRules(hourly=24), UTC).keep) == 4


def test_hourly_across_the_spring_forward_gap_in_berlin():
    # 2024-03-31 02:00 CET jumps to 03:00 CEST: 00:59 UTC is 01:59, 01:00 UTC is 03:00.
    times = [utc(2024, 3, 31, 0, 59), utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 1, 59)]
    assert [period_id("hourly", t, BERLIN) for t in times] == [
        "2024/03/31/01",
        "2024/03/31/03",
        "2024/03/31/03",
    ]
    plan = plan_prune(candidates_at(*times), KeepRules(hourly=3), BERLIN)
    assert plan.keep == {2: "keep-hourly", 0: "keep-hourly"}


# --- input validation ----------------------------------------------------------------------


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_prune([PruneCandidate(1, datetime(2024, 1, 1))], KeepRules(last=1), UTC)


def test_duplicate_ids_are_refused():
    moment = utc(2024, 1, 1)
    with pytest.raises(ValueError, match="twice"):
        plan_prune([PruneCandidate(1, moment), PruneCandidate(1, moment)], KeepRules(last=1), UTC)


@pytest.mark.parametrize("value", [-1, 1.5, True, None])
def test_keep_values_must_be_non_negative_integers(value):
    with pytest.raises(ValueError, match="keep-daily"):
        KeepRules(daily=value)


def test_rules_from_effective_settings():
    keep = {"keep_last": 24, "keep_hourly": 0, "keep_daily": 14, "keep_weekly": None}
    assert KeepRules.from_settings(keep) == KeepRules(last=24, daily=14)
    assert KeepRules.from_settings({}).keeps_all


def test_empty_history():
    plan = plan_prune([], KeepRules(last=3), UTC)
    assert plan.keep == {} and plan.remove == [] and plan.order == []
