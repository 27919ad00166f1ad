"""The prune preview of a machine: what the keep rules keep (and why) and what would go.

It only reads, so every role may look; pruning itself runs as a periodic task.
"""

from django.views.generic import TemplateView

from protection.inheritance import effective_for_machine
from protection.models import KEEP_FIELDS, Machine
from storage.prune import KeepRules
from storage.services.prune import prune_preview_for_machine
from tenants.views.base import TenantObjectMixin


class PrunePreviewView(TenantObjectMixin, TemplateView):
    model = Machine
    template_name = "storage/prune_preview.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        machine = self.object
        effective = effective_for_machine(machine)
        rules = KeepRules.from_settings(effective.keep)
        disks = prune_preview_for_machine(self.customer, machine, rules)
        context.update(
            machine=machine,
            disks=disks,
            keep_rows=[row for row in effective.display_rows() if row[0] in KEEP_FIELDS],
            keeps_all=rules.keeps_all,
            has_snapshots=any(d.rows for d in disks),
            kept_total=sum(d.kept for d in disks),
            removed_total=sum(d.removed for d in disks),
        )
        return context
