"""Display formats of the protection pages: disk sizes in GiB and replication settings."""

from datetime import time

from django import template

register = template.Library()

WEEKDAYS = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}


@register.filter
def gib(size_bytes) -> str:
    """Bytes as GiB, the unit hypervisors show disk sizes in ("40.0 GiB")."""
    if size_bytes in (None, ""):
        return "—"
    value = int(size_bytes) / 1024**3
    return f"{value:,.1f} GiB" if value >= 0.1 else f"{int(size_bytes) / 1024**2:,.1f} MiB"


@register.filter
def mib_as_gib(size_mb) -> str:
    """RAM stored in MiB, shown in GiB when it is at least one."""
    if size_mb in (None, ""):
        return "—"
    size_mb = int(size_mb)
    if size_mb < 1024:
        return f"{size_mb} MiB"
    return f"{size_mb / 1024:g} GiB"


def _every(minutes: int) -> str:
    for unit, size in (("day", 1440), ("hour", 60)):
        if minutes % size == 0:
            n = minutes // size
            return f"every {n} {unit}{'s' if n != 1 else ''}"
    return f"every {minutes} minutes"


def _clock(value: time) -> str:
    return value.strftime("%H:%M")


@register.filter
def setting_value(value, name: str) -> str:
    """One effective replication setting in words, e.g. ``every 2 hours``."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if name == "interval_minutes":
        return _every(int(value))
    if name == "window":
        start, end = value
        return f"{_clock(start)}\N{EN DASH}{_clock(end)}"
    if name == "window_days":
        days = sorted(int(d) for d in value)
        if days == list(WEEKDAYS):
            return "every day"
        return ", ".join(WEEKDAYS.get(d, str(d)) for d in days) or "no day"
    if name == "bandwidth_limit_mbps":
        return f"{value} Mbit/s" if value else "unlimited"
    return str(value)


@register.filter
def source_text(source, level: str) -> str:
    """Where a value came from, seen from an object of ``level`` ("machine"/"group")."""
    if source.level == level:
        return f"set on this {level}"
    if source.level == "default":
        return "built-in default"
    return f"inherited from {source.label}"
