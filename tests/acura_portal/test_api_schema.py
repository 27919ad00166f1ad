"""The OpenAPI schema: generated without warnings, valid, served, and documented offline."""

from io import StringIO

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from rest_framework.test import APIClient

CUSTOMER_PATHS = [
    "/api/v1/customers/",
    "/api/v1/customers/{slug}/",
    "/api/v1/c/{customer_slug}/machine-groups/",
    "/api/v1/c/{customer_slug}/machine-groups/{id}/",
    "/api/v1/c/{customer_slug}/machines/",
    "/api/v1/c/{customer_slug}/machines/{id}/",
    "/api/v1/c/{customer_slug}/machines/start-protection/",
    "/api/v1/c/{customer_slug}/machines/stop-protection/",
    "/api/v1/c/{customer_slug}/machines/move/",
    "/api/v1/c/{customer_slug}/clouds/",
    "/api/v1/c/{customer_slug}/clouds/{id}/",
    "/api/v1/c/{customer_slug}/clouds/{id}/test/",
    "/api/v1/c/{customer_slug}/download-links/",
    "/api/v1/c/{customer_slug}/download-links/{id}/",
    "/api/v1/c/{customer_slug}/download-links/{id}/revoke/",
]

EXTERNAL_ASSET_HOSTS = ["cdn.jsdelivr", "unpkg", "cdnjs", "googleapis", "gstatic"]


def test_spectacular_validates_without_warnings(tmp_path, capsys):
    """The same check as ``manage.py spectacular --validate --fail-on-warn`` in CI."""
    GENERATOR_STATS.reset()
    out, err = StringIO(), StringIO()
    target = tmp_path / "schema.yaml"
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(target),
        stdout=out,
        stderr=err,
    )
    printed = capsys.readouterr()  # the summary of warnings goes to print()
    assert not GENERATOR_STATS._warn_cache
    assert not GENERATOR_STATS._error_cache
    assert "Warning" not in printed.out + printed.err + err.getvalue()
    schema = target.read_text()
    for path in CUSTOMER_PATHS:
        assert f"{path}:" in schema


@pytest.mark.django_db
def test_schema_endpoint_lists_every_customer_route():
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in CUSTOMER_PATHS:
        assert path in schema["paths"], path
    machines = schema["paths"]["/api/v1/c/{customer_slug}/machines/"]["get"]
    params = {p["name"] for p in machines["parameters"]}
    assert {"customer_slug", "group", "status", "platform", "search", "ordering", "page"} <= params
    assert "ApiError" in schema["components"]["schemas"]
    assert "EffectiveSettings" in schema["components"]["schemas"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "asset"),
    [
        ("/api/v1/docs/", "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"),
        ("/api/v1/redoc/", "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"),
    ],
)
def test_docs_pages_use_local_assets_only(url, asset):
    response = APIClient().get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert f"/static/{asset}" in page
    assert "/api/v1/schema/" in page
    for host in EXTERNAL_ASSET_HOSTS:
        assert host not in page, f"{url} loads assets from {host}"


@pytest.mark.django_db
def test_docs_assets_are_served_by_the_app(client):
    """The referenced sidecar files exist as static files (whitenoise serves them)."""
    from django.contrib.staticfiles import finders

    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert finders.find("drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js")
