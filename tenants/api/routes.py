"""The tenants app's viewsets on the one /api/v1/ router (``acura_portal.api.routes``)."""

from .views import CustomerViewSet


def register(router) -> None:
    router.register(r"customers", CustomerViewSet, basename="customer")
