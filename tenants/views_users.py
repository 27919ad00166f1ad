# PLACEHOLDER — replaced by the users-page work.
from django.http import HttpResponse
from django.views import View

from .views_base import CustomerMixin


class _Placeholder(CustomerMixin, View):
    def get(self, request, *args, **kwargs):
        return HttpResponse("not built yet")


class MembershipListView(_Placeholder):
    pass


class MembershipCreateView(_Placeholder):
    pass


class MembershipUpdateView(_Placeholder):
    pass


class MembershipDeleteView(_Placeholder):
    pass
