"""When a machine's schedule runs it: pure functions over effective settings, no database.

A window is a time of day (start, end) on chosen ISO weekdays in the customer's time zone.
A window whose end is not after its start spans midnight and belongs to the weekday it
*starts* on: 22:00–06:00 on Monday allows Monday 22:00 to Tuesday 06:00 (and nothing on
Monday 00:00–06:00 unless Sunday is allowed too). The comparisons happen on absolute
instants, so daylight-saving changes shorten or lengthen a night window as the clock does.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def window_bounds(day, start: time, end: time, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The window that opens on local date ``day``, as UTC instants [opens, closes)."""
    opens = datetime.combine(day, start, tzinfo=zone)
    closes_day = day if end > start else day + timedelta(days=1)  # start == end: all day
    closes = datetime.combine(closes_day, end, tzinfo=zone)
    return opens.astimezone(UTC), closes.astimezone(UTC)


def next_in_window(
    moment: datetime, window: tuple[time, time], days: Iterable[int], zone: ZoneInfo
) -> datetime | None:
    """``moment`` itself when it lies in an allowed window, else the next window's opening;
    None when no weekday is allowed."""
    allowed = set(days)
    if not allowed:
        return None
    start, end = window
    local_day = moment.astimezone(zone).date()
    # Windows are visited in the order they open; yesterday's may still be open (midnight).
    for offset in range(-1, 9):
        day = local_day + timedelta(days=offset)
        if day.isoweekday() not in allowed:
            continue
        opens, closes = window_bounds(day, start, end, zone)
        if closes > moment:
            return max(opens, moment)
    return None  # pragma: no cover - some allowed weekday opens within eight days


def next_run(
    now: datetime,
    last_job_at: datetime | None,
    *,
    interval_minutes: int,
    window_enabled: bool,
    window: tuple[time, time],
    days: Iterable[int],
    zone: ZoneInfo,
) -> datetime | None:
    """The next moment the schedule runs a machine, never before ``now``: one interval
    after its last job was created (at once when it never had one), moved into the allowed
    window. None when the window allows no weekday."""
    due = (
        now if last_job_at is None else max(now, last_job_at + timedelta(minutes=interval_minutes))
    )
    if not window_enabled:
        return due
    return next_in_window(due, window, days, zone)
