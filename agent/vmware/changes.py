"""Changed block tracking: which areas of a snapshot disk to read.

``QueryChangedDiskAreas(snapshot, deviceKey, startOffset, changeId)`` answers one page: the
changed areas within ``[startOffset, startOffset + length)``; a client loops, moving
``startOffset`` by ``length``, until the whole disk is covered. With change id ``*`` the
areas are those ever allocated (the first replication reads only them, everything else is
zeros); with the change id stored with the previous snapshot of the disk, those written
since (the next replication reads only them, everything else is the base's).

A change id the server no longer accepts — CBT switched off and on, the disk resized, a
snapshot reverted — is a ``FileFault``: then the whole disk is read and its chunks compared
with the base index, never a silent gap (:func:`plan_for`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyVmomi import vim, vmodl

from ..replicate import ReadPlan
from .session import translate

log = logging.getLogger("agent.vmware")

ALL_ALLOCATED = "*"
MAX_PAGES = 1_000_000  # a server that never advances would otherwise loop forever


class ChangeIdRefused(Exception):
    """The server does not accept the change id (CBT reset, disk resized, reverted)."""


def changed_areas(vm, snapshot, disk_key: int, capacity: int, change_id: str, where: str):
    """Every changed area of the disk as ``(start, length)``, page by page."""
    areas: list[tuple[int, int]] = []
    offset, pages = 0, 0
    while offset < capacity:
        try:
            info = vm.QueryChangedDiskAreas(
                snapshot=snapshot, deviceKey=disk_key, startOffset=offset, changeId=change_id
            )
        except (vim.fault.FileFault, vmodl.fault.InvalidArgument) as exc:
            raise ChangeIdRefused(getattr(exc, "msg", None) or type(exc).__name__) from None
        except Exception as exc:  # vCenter gone, session ended: a clear error, not a traceback
            raise translate(exc, where) from None
        for area in info.changedArea or []:
            start, length = int(area.start), int(area.length)
            end = min(start + length, capacity)
            if end > start:
                areas.append((start, end - start))
        length = int(info.length or 0)
        pages += 1
        if length <= 0 or pages > MAX_PAGES:
            raise ChangeIdRefused(f"the answer for offset {offset} covers no bytes")
        offset = int(info.startOffset) + length
    return areas


@dataclass
class DiskPlanner:
    """The :class:`~agent.replicate.ReadPlan` of one snapshot disk, decided once its upload
    session is open (its answer carries ``base_change_id``, the base index comes with it).
    ``notes`` collects what the job should say (a fallback to a full read)."""

    vm: object
    snapshot: object
    key: str
    capacity: int
    where: str = "vCenter"
    notes: list[str] = field(default_factory=list)
    summary: str = ""

    def __call__(self, session: dict, base) -> ReadPlan:
        base_change_id = session.get("base_change_id") or ""
        if base is None:
            return self._plan(ALL_ALLOCATED, "no earlier snapshot", zero_elsewhere=True)
        if base.disk_size != self.capacity:
            return self._full(
                f"disk {self.key} was resized ({base.disk_size} → {self.capacity} bytes) since "
                "the last replication: reading the whole disk and comparing it with the base"
            )
        if not base_change_id:
            return self._full(
                f"disk {self.key}: the last snapshot has no change id (taken without change "
                "tracking): reading the whole disk and comparing it with the base"
            )
        return self._plan(base_change_id, "changed since the last snapshot")

    def _plan(self, change_id: str, what: str, *, zero_elsewhere: bool = False) -> ReadPlan:
        try:
            areas = changed_areas(
                self.vm, self.snapshot, int(self.key), self.capacity, change_id, self.where
            )
        except ChangeIdRefused as exc:
            if zero_elsewhere:  # no base: read it all (zeros are recognised and not sent)
                return self._full(
                    f"disk {self.key}: vCenter does not list the allocated areas ({exc}): "
                    "reading the whole disk"
                )
            return self._full(
                f"disk {self.key}: vCenter no longer accepts change id {change_id} ({exc}; "
                "change tracking was reset, the disk resized or a snapshot reverted): reading "
                "the whole disk and comparing it with the base"
            )
        total = sum(length for _, length in areas)
        self.summary = f"{len(areas)} area(s), {total} bytes {what}"
        log.info(
            "disk %s: %d changed area(s), %.1f MiB to read (%s, change id %s)",
            self.key, len(areas), total / 2**20, what, change_id,
        )  # fmt: skip
        return ReadPlan(areas, zero_elsewhere=zero_elsewhere)

    def _full(self, note: str) -> ReadPlan:
        log.warning("%s", note)
        self.notes.append(note)
        self.summary = "whole disk read"
        return ReadPlan(None)
