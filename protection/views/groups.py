# PLACEHOLDER — replaced by the machines/groups work.
from django.http import HttpResponse
from django.views import View

from tenants.views_base import CustomerMixin


class _Placeholder(CustomerMixin, View):
    def get(self, request, *args, **kwargs):
        return HttpResponse("not built yet")


class GroupListView(_Placeholder):
    pass


class GroupCreateView(_Placeholder):
    pass


class GroupDetailView(_Placeholder):
    pass


class GroupUpdateView(_Placeholder):
    pass


class GroupDeleteView(_Placeholder):
    pass
