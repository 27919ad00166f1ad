"""Prune planning: which snapshots the keep rules retain — Proxmox Backup Server semantics.

A pure function (no Django): ``plan_prune(candidates, rules, tz, pinned)`` → ``PrunePlan``.
It follows PBS ``prune.rs`` (``compute_prune_info`` / ``mark_selections``) step by step, so
retention behaves the way administrators who know PBS expect:

* Candidates are sorted newest first (ties broken by id, so the input order never matters).
* The rules run in the order last, hourly, daily, weekly, monthly, yearly. Each rule maps a
  snapshot to a *period id* — keep-last: the snapshot itself; hourly ``%Y/%m/%d/%H``; daily
  ``%Y/%m/%d``; weekly the ISO week ``%G/%V``; monthly ``%Y/%m``; yearly ``%Y`` — computed
  from the wall clock in the CUSTOMER's time zone.
* A rule first collects the periods that already hold a snapshot KEPT by an earlier rule
  ("already included") and skips them: keep-daily 7 after keep-last 3 keeps seven more days,
  not seven days of which today was already kept.
* Then it walks newest → oldest: a snapshot marked already (kept or removed by an earlier
  rule, protected, pinned) is skipped; a protected one is marked kept and counts for nothing;
  in a new period the snapshot is kept — unless the rule already has ``keep`` periods, which
  ends the rule; a further snapshot of a period this rule included is marked for removal.
* Whatever no rule marked is removed. Protected snapshots are always kept.

Two additions to PBS:

* ``pinned`` ids (the caller passes the bases of OPEN upload sessions) are kept before any rule
  runs, like PBS keeps the newest unfinished backup: they are skipped by every rule and do not
  fill a period, so a pinned snapshot never costs another snapshot its place.
* When every keep value is 0 the plan keeps everything (PBS "keep all" when no keep option is
  set): a policy without rules is a configuration gap, and deleting every point in time of a
  disk is never what it means.

Wall-clock periods follow PBS (``strftime_local``): in the hour that repeats when daylight
saving time ends (Europe/Berlin 02:00-03:00 on the last Sunday of October) both real hours are
one hourly period, so keep-hourly keeps one snapshot of the two hours.
"""

from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

RULE_ORDER = ("last", "hourly", "daily", "weekly", "monthly", "yearly")

REASON_PROTECTED = "protected"
REASON_PINNED = "base of an open upload"
REASON_KEEP_ALL = "no keep rule set"


def rule_reason(rule: str) -> str:
    """The reason a rule gives for what it keeps: ``"keep-daily"``."""
    return f"keep-{rule}"


@dataclass(frozen=True)
class PruneCandidate:
    """One snapshot as prune sees it. ``created_at`` must be timezone-aware."""

    id: Hashable
    created_at: datetime
    protected: bool = False


@dataclass(frozen=True)
class KeepRules:
    """How many periods each rule keeps; 0 turns a rule off."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def __post_init__(self):
        for rule in RULE_ORDER:
            value = getattr(self, rule)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"keep-{rule} must be an integer of 0 or more, not {value!r}.")

    @classmethod
    def from_settings(cls, keep: Mapping[str, int | None]) -> "KeepRules":
        """From effective settings' ``keep`` mapping (``keep_last`` … ``keep_yearly``)."""
        return cls(**{rule: int(keep.get(f"keep_{rule}") or 0) for rule in RULE_ORDER})

    def active(self) -> list[tuple[str, int]]:
        """(rule, keep) of the rules that are on, in the order they apply."""
        return [(rule, getattr(self, rule)) for rule in RULE_ORDER if getattr(self, rule) > 0]

    @property
    def keeps_all(self) -> bool:
        """No rule is on: the plan keeps everything (see the module docstring)."""
        return not self.active()


@dataclass
class PrunePlan:
    """The decision for every candidate.

    ``keep`` maps id → reason ("keep-daily", "protected", …); ``remove`` lists the ids to
    delete, newest first; ``order`` is every candidate id, newest first (for previews).
    """

    keep: dict[Hashable, str] = field(default_factory=dict)
    remove: list[Hashable] = field(default_factory=list)
    order: list[Hashable] = field(default_factory=list)
    keeps_all: bool = False

    def reason(self, snapshot_id: Hashable) -> str | None:
        """Why a snapshot stays, or None when it would be removed."""
        return self.keep.get(snapshot_id)


def period_id(rule: str, created_at: datetime, tz: tzinfo) -> str:
    """The period a point in time falls in for ``rule`` (not "last"), in zone ``tz``."""
    local = created_at.astimezone(tz)
    if rule == "hourly":
        return f"{local.year:04d}/{local.month:02d}/{local.day:02d}/{local.hour:02d}"
    if rule == "daily":
        return f"{local.year:04d}/{local.month:02d}/{local.day:02d}"
    if rule == "weekly":
        iso = local.isocalendar()  # ISO year and week: Dec 30 may be week 1 of next year
        return f"{iso.year:04d}/{iso.week:02d}"
    if rule == "monthly":
        return f"{local.year:04d}/{local.month:02d}"
    if rule == "yearly":
        return f"{local.year:04d}"
    raise ValueError(f"Unknown prune rule {rule!r}.")


def _selector(rule: str, tz: tzinfo):
    """The period id function of a rule: keep-last's period is the snapshot itself."""
    if rule == "last":
        return lambda candidate: ("snapshot", candidate.id)
    return lambda candidate: period_id(rule, candidate.created_at, tz)


def _sorted_newest_first(candidates: Iterable[PruneCandidate]) -> list[PruneCandidate]:
    result = list(candidates)
    seen: set[Hashable] = set()
    for candidate in result:
        if candidate.created_at.tzinfo is None or candidate.created_at.utcoffset() is None:
            raise ValueError(f"Snapshot {candidate.id}: created_at must be timezone-aware.")
        if candidate.id in seen:
            raise ValueError(f"Snapshot {candidate.id} is listed twice.")
        seen.add(candidate.id)
    result.sort(key=lambda c: (c.created_at, str(c.id)), reverse=True)
    return result


def plan_prune(
    candidates: Iterable[PruneCandidate],
    rules: KeepRules,
    tz: tzinfo,
    pinned: Collection[Hashable] = frozenset(),
) -> PrunePlan:
    """Which candidates the rules keep (and why) and which go. See the module docstring."""
    ordered = _sorted_newest_first(candidates)
    plan = PrunePlan(order=[c.id for c in ordered], keeps_all=rules.keeps_all)
    removed: set[Hashable] = set()
    kept_by_rule: set[Hashable] = set()

    # Marks that win before any rule: protected, then the bases of open uploads.
    for candidate in ordered:
        if candidate.protected:
            plan.keep[candidate.id] = REASON_PROTECTED
        elif candidate.id in pinned:
            plan.keep[candidate.id] = REASON_PINNED

    if plan.keeps_all:
        for candidate in ordered:
            plan.keep.setdefault(candidate.id, REASON_KEEP_ALL)
        return plan

    for rule, keep in rules.active():
        select = _selector(rule, tz)
        already_included = {select(c) for c in ordered if c.id in kept_by_rule}
        included: set = set()
        for candidate in ordered:
            if candidate.id in plan.keep or candidate.id in removed:
                continue
            period = select(candidate)
            if period in already_included:
                continue
            if period not in included:
                if len(included) >= keep:
                    break
                included.add(period)
                plan.keep[candidate.id] = rule_reason(rule)
                kept_by_rule.add(candidate.id)
            else:
                removed.add(candidate.id)

    plan.remove = [c.id for c in ordered if c.id not in plan.keep]
    return plan
