# PLACEHOLDER — replaced by the machines/groups work.
from django.http import HttpResponse
from django.views import View

from tenants.views_base import CustomerMixin


class _Placeholder(CustomerMixin, View):
    def get(self, request, *args, **kwargs):
        return HttpResponse("not built yet")


class MachineListView(_Placeholder):
    pass


class MachineBulkActionView(_Placeholder):
    pass


class MachineDetailView(_Placeholder):
    pass
