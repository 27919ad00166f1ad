"""The protection app's viewsets on the one /api/v1/ router (``acura_portal.api.routes``)."""

from .views import MachineGroupViewSet, MachineViewSet


def register(router) -> None:
    prefix = r"c/(?P<customer_slug>[-\w]+)"
    router.register(f"{prefix}/machine-groups", MachineGroupViewSet, basename="machine-group")
    router.register(f"{prefix}/machines", MachineViewSet, basename="machine")
