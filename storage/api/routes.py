"""The storage app's viewsets on the one /api/v1/ router (``acura_portal.api.routes``)."""

from .views import AgentSnapshotViewSet, UploadSessionViewSet


def register(router) -> None:
    router.register(r"agent/upload-sessions", UploadSessionViewSet, basename="upload-session")
    router.register(r"agent/snapshots", AgentSnapshotViewSet, basename="agent-snapshot")
