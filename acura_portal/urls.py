"""Root URLconf: pages, the provider admin, the API (one router under /api/v1/), health.

The project package's own page, the customer dashboard that summarizes every app, is
namespaced ``acura_portal`` like an app's pages are; each app's pages are in its ``urls``.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from .api import routes  # noqa: F401  (registers every app's viewsets on the router)
from .api.router import router
from .health import healthz
from .views import DashboardView

dashboard_patterns = [
    path("c/<slug:customer_slug>/", DashboardView.as_view(), name="dashboard"),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/v1/redoc/", SpectacularRedocView.as_view(url_name="api_schema"), name="api_redoc"),
    path("api/v1/", include(router.urls)),
    path("", include((dashboard_patterns, "acura_portal"))),
    path("", include("tenants.urls")),
    path("", include("protection.urls")),
    path("", include("storage.urls")),
    path("", include("clouds.urls")),
]
