"""``--changed-areas FILE``: the extents that changed since the base snapshot, as VMware's
``QueryChangedDiskAreas`` gives them (changed block tracking).

Accepted shapes (JSON):

- a list of extents ``[{"start": 0, "length": 65536}, …]`` — for a single ``--disk``;
- an object mapping a disk's path or key to such a list, for several disks (a disk not
  listed is compared hash by hash against its base);
- in either place, VMware's ``DiskChangeInfo`` itself: ``{"startOffset": …, "length": …,
  "changedArea": [{"start": …, "length": …}, …]}``.

Everything is validated before anything is sent to the server: a negative or non-integer
value, or an extent reaching past the end of the disk, is a :class:`UsageError` (exit 2).
Overlapping extents are allowed (their union counts). The extents become chunk positions:
every chunk that an extent touches is re-read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .errors import UsageError

Extent = tuple[int, int]


def _number(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{what} must be a whole number of bytes, not {value!r}")
    if value < 0:
        raise UsageError(f"{what} must not be negative ({value})")
    return value


def parse_extents(value, where: str) -> list[Extent]:
    """A list of ``{"start", "length"}`` (or a DiskChangeInfo) as ``(start, length)``."""
    if isinstance(value, dict) and "changedArea" in value:
        value = value["changedArea"]
    if not isinstance(value, list):
        raise UsageError(f"{where}: expected a list of {{'start', 'length'}} extents")
    extents = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) - {"start", "length"} or len(item) != 2:
            raise UsageError(
                f"{where}: extent {i} must be an object with exactly 'start' and 'length', "
                f"not {item!r}"
            )
        start = _number(item["start"], f"{where}: extent {i} start")
        length = _number(item["length"], f"{where}: extent {i} length")
        extents.append((start, length))
    return extents


def load_changed_areas(path: str | Path) -> list[Extent] | dict[str, list[Extent]]:
    """Read and check the file's shape (sizes are checked later against the disks)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read the changed-areas file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the changed-areas file {path} is not valid JSON: {exc}") from None
    if isinstance(data, list) or (isinstance(data, dict) and "changedArea" in data):
        return parse_extents(data, str(path))
    if isinstance(data, dict):
        return {str(k): parse_extents(v, f"{path} [{k!r}]") for k, v in data.items()}
    raise UsageError(f"the changed-areas file {path} must hold a list or an object")


def assign(parsed, disks: list[tuple[str, str, int]]) -> dict[str, list[Extent]]:
    """Per disk key, its extents: ``disks`` is ``(key, path, size)`` for each ``--disk``.

    A bare list needs exactly one disk; a mapping's keys must each name a given disk (by
    path or key) — a key naming no disk is a typo and an error, never silently ignored."""
    if isinstance(parsed, list):
        if len(disks) != 1:
            raise UsageError(
                "a changed-areas list without disk names needs exactly one --disk; give an "
                'object like {"/dev/vda": [...], "/dev/vdb": [...]} for several'
            )
        result = {disks[0][0]: parsed}
    else:
        result = {}
        for name, extents in parsed.items():
            match = [key for key, path, _ in disks if name in (key, path)]
            if not match:
                raise UsageError(f"the changed-areas file names {name!r}, which is no given --disk")
            if match[0] in result:
                raise UsageError(f"the changed-areas file names disk {match[0]!r} twice")
            result[match[0]] = extents
    sizes = {key: size for key, _, size in disks}
    for key, extents in result.items():
        for start, length in extents:
            if start + length > sizes[key]:
                raise UsageError(
                    f"changed area {{start: {start}, length: {length}}} of disk {key!r} "
                    f"reaches past its end ({sizes[key]} bytes)"
                )
    return result


def chunk_positions(extents: Iterable[Extent], chunk_size: int) -> list[int]:
    """Sorted distinct chunk positions the extents touch (zero-length extents touch none)."""
    spans = sorted((start, start + length) for start, length in extents if length > 0)
    positions: list[int] = []
    last = -1
    for start, end in spans:
        first = max(start // chunk_size, last + 1)
        stop = (end - 1) // chunk_size
        if first <= stop:
            positions.extend(range(first, stop + 1))
            last = stop
    return positions
