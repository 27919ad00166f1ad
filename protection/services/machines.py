"""Writes of the protection app: machine protection state, moves, and machine groups.

Every service takes the acting ``customer`` first and refuses (``ValidationError``) any
object that belongs to someone else, even though views already pass scoped objects: the
services are also called from tasks, the API and the shell, where nothing else checks.
Each runs in one transaction, so a refused or failing call changes nothing.
"""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..inheritance import effective_for_machine, retention_problem
from ..models import UNPROTECTED_STATUSES, Machine, MachineGroup, MachineStatus
from .jobs import jobs_cancel_for_machines

PROTECTED_STATUSES = [s for s in MachineStatus if s not in UNPROTECTED_STATUSES]


def _check_owned(customer, objects: Iterable, what: str) -> list:
    """The objects as a list, after checking each belongs to ``customer``."""
    objects = list(objects)
    if any(obj.customer_id != customer.pk for obj in objects):
        # The same words for "foreign" and "unknown": nobody learns other customers' ids.
        raise ValidationError(f"Some of the selected {what} do not exist.")
    return objects


def _check_group(customer, group: MachineGroup | None) -> None:
    if group is not None and group.customer_id != customer.pk:
        raise ValidationError("The selected group does not exist.")


def _scoped_machines(customer, machines: Iterable[Machine]):
    """The distinct ids and a scoped queryset of exactly these machines.

    The status conditions go into the UPDATE itself, so a machine whose state changed
    since the page was rendered is counted by what the database really did.
    """
    ids = {m.pk for m in _check_owned(customer, machines, "machines")}
    return ids, Machine.objects.for_customer(customer).filter(pk__in=ids)


def machines_start_protection(customer, machines: Iterable[Machine]) -> tuple[int, int]:
    """*Actions → Start Protection*: Discovered / Unprotected machines become Protected.

    Machines that are already protected (in any protected state, e.g. replicating) are
    left alone: restarting them would lose their sync state. Returns ``(changed, skipped)``.
    """
    with transaction.atomic():
        ids, queryset = _scoped_machines(customer, machines)
        changed = queryset.filter(status__in=UNPROTECTED_STATUSES).update(
            status=MachineStatus.PROTECTED, status_message="", updated_at=timezone.now()
        )
    return changed, len(ids) - changed


def machines_stop_protection(customer, machines: Iterable[Machine]) -> tuple[int, int]:
    """*Stop Protection*: protected machines go back to Unprotected and leave the schedule.

    The status message and the next run belong to the protection that ends, so both are
    cleared, and the machines' queued or running jobs are cancelled; the last replication
    time stays (its snapshots still exist). Machines that are not protected are skipped.
    Returns ``(changed, skipped)``.
    """
    with transaction.atomic():
        ids, queryset = _scoped_machines(customer, machines)
        stopping = list(queryset.filter(status__in=PROTECTED_STATUSES).values_list("pk", flat=True))
        changed = queryset.filter(pk__in=stopping).update(
            status=MachineStatus.UNPROTECTED,
            status_message="",
            next_run_at=None,
            updated_at=timezone.now(),
        )
        jobs_cancel_for_machines(customer, stopping)
    return changed, len(ids) - changed


def machines_move(
    customer, machines: Iterable[Machine], group: MachineGroup | None
) -> tuple[int, int]:
    """*Move to group*: put the machines into ``group`` (``None``: no group).

    Machines then inherit that group's replication settings. Returns ``(moved, skipped)``,
    skipped being the machines that already were in ``group``.
    """
    _check_group(customer, group)
    with transaction.atomic():
        ids, queryset = _scoped_machines(customer, machines)
        if group is None:
            to_move = queryset.filter(group__isnull=False)
        else:
            to_move = queryset.exclude(group=group)
        moving = list(to_move.values_list("pk", flat=True))
        moved = to_move.update(group=group, updated_at=timezone.now())
        _check_moved_retention(customer, moving)
    return moved, len(ids) - moved


def _check_moved_retention(customer, machine_ids: list[int]) -> None:
    """A machine with settings of its own may lean on its old group's keep rules; refuse a
    move that would leave it keeping no snapshots (the transaction then rolls back)."""
    with_policy = (
        Machine.objects.for_customer(customer)
        .filter(pk__in=machine_ids, policy__isnull=False)
        .select_related("group", "customer")
    )
    broken = [m.name for m in with_policy if retention_problem(effective_for_machine(m))]
    if broken:
        raise ValidationError(
            f"Not moved: {', '.join(sorted(broken))} would keep no snapshots in the new group "
            f"(their own keep values are all 0). Change their retention settings first.",
            code="no_retention",
        )


def _clean_group_fields(name: str, description: str) -> tuple[str, str]:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the group a name."})
    if len(name) > MachineGroup._meta.get_field("name").max_length:
        raise ValidationError({"name": "The name is too long (at most 100 characters)."})
    return name, (description or "").strip()


def _duplicate_name_error(name: str) -> ValidationError:
    return ValidationError({"name": f"A group named “{name}” already exists."})


def _save_group(customer, group: MachineGroup, exclude_pk=None) -> MachineGroup:
    """Save with the per-customer unique name checked first (clear message) and enforced
    by the database constraint (a concurrent duplicate still gets the same message)."""
    same_name = MachineGroup.objects.for_customer(customer).filter(name__iexact=group.name)
    if exclude_pk is not None:
        same_name = same_name.exclude(pk=exclude_pk)
    if same_name.exists():
        raise _duplicate_name_error(group.name)
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError as exc:
        raise _duplicate_name_error(group.name) from exc
    return group


def group_create(customer, *, name: str, description: str = "") -> MachineGroup:
    """A new machine group. Names are unique per customer, ignoring case, so "Web" and
    "web" cannot both appear in the group select of the wizard."""
    name, description = _clean_group_fields(name, description)
    return _save_group(
        customer, MachineGroup(customer=customer, name=name, description=description)
    )


def group_update(
    customer, group: MachineGroup, *, name: str, description: str = ""
) -> MachineGroup:
    """Rename a group or change its description."""
    _check_group(customer, group)
    name, description = _clean_group_fields(name, description)
    group.name, group.description = name, description
    return _save_group(customer, group, exclude_pk=group.pk)


def group_delete(customer, group: MachineGroup, move_to: MachineGroup | None = None) -> int:
    """Delete a group; its machines move to ``move_to`` (``None``: no group) first.

    The move and the delete share one transaction, so machines never end up half-moved.
    The group's own replication settings go with it; moved machines inherit from their
    new group. Returns the number of machines moved.
    """
    _check_group(customer, group)
    _check_group(customer, move_to)
    if move_to is not None and move_to.pk == group.pk:
        raise ValidationError("Machines cannot move to the group that is being deleted.")
    with transaction.atomic():
        moved = (
            Machine.objects.for_customer(customer)
            .filter(group=group)
            .update(group=move_to, updated_at=timezone.now())
        )
        group.delete()
    return moved
