"""Display formats of the protection pages: disk sizes in GiB and replication settings."""

from django import template

from protection.inheritance import display_value

register = template.Library()


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


@register.filter
def setting_value(value, name: str) -> str:
    """One effective replication setting in words (the settings pages' own wording)."""
    return display_value(name, value)


@register.filter
def source_text(source, level: str) -> str:
    """Where a value came from, seen from an object of ``level`` ("machine"/"group")."""
    if source.level == level:
        return f"set on this {level}"
    if source.level == "default":
        return "built-in default"
    return f"inherited from {source.label}"
