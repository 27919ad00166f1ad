"""Customer pages of the snapshot store: a machine's points in time, their raw images,
protection from pruning, and the usage page.

Every view resolves its object from the customer of the URL before the role is checked
(``TenantObjectMixin``), so another customer's machine or snapshot is a 404 for every role
and method.
"""

import re
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import TemplateView

from protection.models import Machine
from tenants.models import Role
from tenants.views.base import CustomerMixin, TenantObjectMixin

from ..http import image_response
from ..models import Snapshot
from ..selectors import (
    customer_usage,
    machine_disk_counts,
    machine_snapshots,
    machine_usage,
    machine_usage_table,
)
from ..services.snapshots import snapshot_set_protected

PAGE_SIZE = 50

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _zone(customer) -> ZoneInfo:
    return ZoneInfo(customer.time_zone or "UTC")


def _when(customer, snapshot: Snapshot) -> str:
    return snapshot.created_at.astimezone(_zone(customer)).strftime("%Y-%m-%d %H:%M:%S %Z")


def image_filename(customer, snapshot: Snapshot) -> str:
    """``<machine>-<disk key>-<YYYYmmddTHHMMSS>.raw``, the time in the customer's zone (the
    time the snapshot list shows). Characters that are unsafe in file names on some system
    (``scsi0:0``, quotes, slashes) become ``_``."""
    stamp = snapshot.created_at.astimezone(_zone(customer)).strftime("%Y%m%dT%H%M%S")
    parts = [snapshot.machine.name, snapshot.disk.key, stamp]
    return "-".join(_UNSAFE.sub("_", part).strip("_") or "_" for part in parts) + ".raw"


def _by_disk(snapshots, counts: dict[int, dict]) -> list[dict]:
    """The page's snapshots in runs of one disk (the query orders by disk), each with the
    disk's totals over all pages."""
    groups: list[dict] = []
    for snapshot in snapshots:
        if not groups or groups[-1]["disk"].pk != snapshot.disk_id:
            groups.append({"disk": snapshot.disk, "snapshots": [], **counts[snapshot.disk_id]})
        groups[-1]["snapshots"].append(snapshot)
    return groups


class MachineSnapshotListView(TenantObjectMixin, TemplateView):
    """The points in time of one machine, per disk, newest first, with its usage on top."""

    model = Machine
    template_name = "storage/snapshot_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        machine = self.object
        snapshots = machine_snapshots(self.customer, machine)
        page = Paginator(snapshots, PAGE_SIZE).get_page(self.request.GET.get("page"))
        context.update(
            machine=machine,
            page_obj=page,
            disks=_by_disk(page.object_list, machine_disk_counts(self.customer, machine)),
            usage=machine_usage(self.customer, machine),
            can_operate=self.membership.has_role(Role.OPERATOR),
        )
        return context


class SnapshotImageDownloadView(TenantObjectMixin, View):
    """The snapshot's disk as a raw image (HTTP Range supported), for operators: an image
    holds every byte of the customer's disk, more than viewers are meant to take away."""

    model = Snapshot
    read_role = Role.OPERATOR

    def get_queryset(self):
        return super().get_queryset().select_related("machine", "disk", "index", "customer")

    def get(self, request, *args, **kwargs):
        return image_response(request, self.object, image_filename(self.customer, self.object))


class SnapshotProtectView(TenantObjectMixin, View):
    """POST ``protected=1`` protects the snapshot from pruning, ``protected=0`` releases
    it; back to ``next`` (a local URL) or the machine's snapshot list with a message."""

    model = Snapshot
    http_method_names = ["post"]

    def get_queryset(self):
        return super().get_queryset().select_related("machine", "disk")

    def _back(self) -> str:
        target = self.request.POST.get("next", "")
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={self.request.get_host()}, require_https=self.request.is_secure()
        ):
            return target
        return reverse(
            "storage:machine_snapshots", args=[self.customer.slug, self.object.machine_id]
        )

    def post(self, request, *args, **kwargs):
        snapshot = self.object
        value = request.POST.get("protected", "")
        label = f"The snapshot of {snapshot.disk.key} at {_when(self.customer, snapshot)}"
        if value not in ("0", "1"):
            messages.error(request, "Choose protected=1 (protect) or protected=0 (release).")
            return redirect(self._back())
        protect = value == "1"
        if not snapshot_set_protected(self.customer, snapshot, protect):
            state = "protected" if protect else "not protected"
            messages.info(request, f"{label} was already {state}.")
        elif protect:
            messages.success(request, f"{label} is now protected: pruning never removes it.")
        else:
            messages.success(
                request,
                f"{label} is no longer protected: the keep rules decide whether pruning "
                f"removes it.",
            )
        return redirect(self._back())


class StorageUsageView(CustomerMixin, TemplateView):
    """The customer's store: totals, and each machine's share of it."""

    template_name = "storage/usage.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["usage"] = customer_usage(self.customer)
        context["machines"] = machine_usage_table(self.customer)
        return context
