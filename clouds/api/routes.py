"""The clouds app's viewsets on the one /api/v1/ router (``acura_portal.api.routes``): the
agent API, then the customer API of clouds and download links. Order matters: ``agent/enroll``
and ``agent/jobs`` before the ``agent`` catch-all."""

from .agent import AgentEnrollViewSet, AgentJobViewSet, AgentSelfViewSet
from .customer import CloudViewSet, DownloadLinkViewSet


def register(router) -> None:
    router.register(r"agent/enroll", AgentEnrollViewSet, basename="agent-enroll")
    router.register(r"agent/jobs", AgentJobViewSet, basename="agent-job")
    router.register(r"agent", AgentSelfViewSet, basename="agent")
    prefix = r"c/(?P<customer_slug>[-\w]+)"
    router.register(f"{prefix}/clouds", CloudViewSet, basename="cloud")
    router.register(f"{prefix}/download-links", DownloadLinkViewSet, basename="download-link")
