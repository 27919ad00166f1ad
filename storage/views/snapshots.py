# PLACEHOLDER — replaced by the snapshot pages work.
from django.http import HttpResponse
from django.views import View

from tenants.views_base import CustomerMixin


class _Placeholder(CustomerMixin, View):
    def get(self, request, *args, **kwargs):
        return HttpResponse("not built yet")


class MachineSnapshotListView(_Placeholder):
    pass


class SnapshotImageDownloadView(_Placeholder):
    pass


class SnapshotProtectView(_Placeholder):
    pass
