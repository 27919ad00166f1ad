"""GET /api/v1/customers/: the customers the caller belongs to, with the caller's role."""

import pytest
from rest_framework.test import APIClient

from tenants.models import Role
from tests.factories import CustomerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.ADMIN])
def test_list_shows_own_customer_with_role(customer, role):
    user = MembershipFactory(customer=customer, role=role).user
    response = api_for(user).get("/api/v1/customers/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"] == [
        {"slug": "acme", "name": "Acme", "time_zone": "Europe/Berlin", "role": role.value}
    ]


def test_list_shows_every_membership_and_hides_inactive_and_foreign(customer, other_customer):
    user = MembershipFactory(customer=customer, role=Role.VIEWER).user
    third = CustomerFactory(name="Initech", slug="initech", time_zone="UTC")
    MembershipFactory(customer=third, user=user, role=Role.ADMIN)
    closed = CustomerFactory(name="Closed", slug="closed", is_active=False)
    MembershipFactory(customer=closed, user=user)
    MembershipFactory(customer=other_customer)  # someone else's membership

    body = api_for(user).get("/api/v1/customers/").json()
    assert [(c["slug"], c["role"]) for c in body["results"]] == [
        ("acme", "viewer"),
        ("initech", "admin"),
    ]


def test_user_without_membership_sees_empty_list(db):
    body = api_for(UserFactory()).get("/api/v1/customers/").json()
    assert body == {"count": 0, "next": None, "previous": None, "results": []}


def test_retrieve_own_customer(viewer_user):
    response = api_for(viewer_user).get("/api/v1/customers/acme/")
    assert response.status_code == 200
    assert response.json()["role"] == "viewer"


@pytest.mark.parametrize("slug", ["acme", "no-such-customer"])
def test_retrieve_foreign_or_unknown_customer_is_404(stranger_user, slug):
    response = api_for(stranger_user).get(f"/api/v1/customers/{slug}/")
    assert response.status_code == 404
    assert response.json()["error"]["status"] == 404


def test_stranger_lists_only_their_customer(customer, stranger_user):
    body = api_for(stranger_user).get("/api/v1/customers/").json()
    assert [c["slug"] for c in body["results"]] == ["globex"]


@pytest.mark.parametrize("url", ["/api/v1/customers/", "/api/v1/customers/acme/"])
def test_anonymous_gets_403_with_error_body(customer, url):
    response = APIClient().get(url)
    assert response.status_code == 403
    assert response.json() == {
        "error": {"status": 403, "message": "Authentication credentials were not provided."}
    }


def test_customers_are_read_only(admin_user):
    response = api_for(admin_user).post("/api/v1/customers/", {"name": "x"}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["status"] == 405
