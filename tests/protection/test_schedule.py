"""The schedule's window arithmetic against a brute-force oracle (property-based)."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from protection.schedule import next_in_window, next_run

# Zones without daylight saving time: minute by minute, local time is a plain shift, so the
# oracle below is exact (test_dispatch covers a DST change by example).
ZONES = ["UTC", "Asia/Kolkata", "Asia/Tokyo", "America/Phoenix", "Asia/Kathmandu"]
minutes_of_day = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
moments = st.integers(0, 2 * 365 * 24 * 60).map(
    lambda m: datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=m)
)
windows = st.tuples(minutes_of_day, minutes_of_day).filter(lambda w: w[0] != w[1])
day_sets = st.sets(st.integers(1, 7), min_size=1)


def inside(moment, window, days, zone) -> bool:
    """The rule in words: the window opens at ``start`` on an allowed weekday and closes at
    ``end`` that day, or the next day when it spans midnight."""
    local = moment.astimezone(zone)
    start, end = window
    today, now = local.isoweekday(), local.time()
    yesterday = 7 if today == 1 else today - 1
    if start < end:
        return today in days and start <= now < end
    return (today in days and now >= start) or (yesterday in days and now < end)


@settings(max_examples=60, deadline=None)
@given(moments, windows, day_sets, st.sampled_from(ZONES))
def test_next_in_window_is_the_first_allowed_minute(moment, window, days, zone_name):
    zone = ZoneInfo(zone_name)
    found = next_in_window(moment, window, days, zone)
    expected = moment
    while not inside(expected, window, days, zone):
        expected += timedelta(minutes=1)
    assert found == expected


def test_no_weekday_means_never():
    assert next_in_window(datetime(2025, 1, 1, tzinfo=UTC), (time(1), time(2)), [], UTC) is None


@given(moments, st.integers(5, 7 * 24 * 60), st.integers(0, 3 * 7 * 24 * 60))
def test_without_window_the_next_run_is_one_interval_after_the_last_job(now, interval, ago):
    last = now - timedelta(minutes=ago)
    found = next_run(
        now,
        last,
        interval_minutes=interval,
        window_enabled=False,
        window=(time(1), time(2)),
        days=[1],
        zone=UTC,
    )
    assert found == max(now, last + timedelta(minutes=interval))
    first = next_run(
        now,
        None,
        interval_minutes=interval,
        window_enabled=False,
        window=(time(1), time(2)),
        days=[1],
        zone=UTC,
    )
    assert first == now  # never replicated: at once
