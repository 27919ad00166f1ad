# PLACEHOLDER — replaced by the prune work.
from django.http import HttpResponse
from django.views import View

from tenants.views_base import CustomerMixin


class PrunePreviewView(CustomerMixin, View):
    def get(self, request, *args, **kwargs):
        return HttpResponse("not built yet")
