"""Login, logout, the customer chooser and the customer switcher."""

import pytest
from django.test import Client
from django.urls import reverse

from tenants.models import Role
from tests.factories import CustomerFactory, MembershipFactory, UserFactory

LOGIN = reverse("tenants:login")
HOME = reverse("tenants:home")


def login(client, username, password):
    return client.post(LOGIN, {"username": username, "password": password})


def test_login_page_renders(client, db):
    response = client.get(LOGIN)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="username"' in body and 'name="password"' in body


def test_one_customer_goes_straight_to_its_dashboard(client, admin_user, password):
    response = login(client, admin_user.username, password)
    assert response.status_code == 302 and response.url == HOME
    home = client.get(HOME)
    assert home.status_code == 302
    assert home.url == reverse("acura_portal:dashboard", args=["acme"])
    assert client.get(home.url).status_code == 200


def test_several_customers_choose_on_home(client, admin_user, other_customer, password):
    MembershipFactory(user=admin_user, customer=other_customer, role=Role.VIEWER)
    response = login(client, admin_user.username, password)
    assert response.url == HOME
    home = client.get(HOME)
    assert home.status_code == 200
    body = home.content.decode()
    assert reverse("acura_portal:dashboard", args=["acme"]) in body
    assert reverse("acura_portal:dashboard", args=["globex"]) in body
    assert "Viewer" in body and "Admin" in body


def test_login_honours_next(client, admin_user, password):
    users = reverse("tenants:membership_list", args=["acme"])
    response = client.post(
        LOGIN, {"username": admin_user.username, "password": password, "next": users}
    )
    assert response.status_code == 302 and response.url == users


def test_wrong_password_shows_an_error(client, admin_user):
    response = login(client, admin_user.username, "not-the-password")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_inactive_customer_users_are_refused(client, admin_user, customer, password):
    customer.is_active = False
    customer.save()
    response = login(client, admin_user.username, password)
    assert response.status_code == 200
    assert "Your customer account is inactive. Contact your provider." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_one_active_customer_is_enough(client, admin_user, other_customer, customer, password):
    MembershipFactory(user=admin_user, customer=other_customer)
    customer.is_active = False
    customer.save()
    assert login(client, admin_user.username, password).status_code == 302
    # The inactive customer's pages are closed; the chooser leads to the active one.
    assert client.get(reverse("acura_portal:dashboard", args=["acme"])).status_code == 404
    assert client.get(HOME).url == reverse("acura_portal:dashboard", args=["globex"])


def test_staff_without_memberships_may_log_in(client, db, password):
    UserFactory(username="provider", is_staff=True)
    assert login(client, "provider", password).status_code == 302
    assert "not a member of any active customer" in client.get(HOME).content.decode()


def test_logout_needs_post(admin_client_):
    assert admin_client_.get(reverse("tenants:logout")).status_code == 405
    response = admin_client_.post(reverse("tenants:logout"))
    assert response.status_code == 302 and response.url == LOGIN
    assert admin_client_.get(HOME).status_code == 302
    assert "_auth_user_id" not in admin_client_.session


@pytest.mark.parametrize(
    "path",
    ["/c/acme/", "/c/acme/users/", "/c/acme/machines/", "/"],
)
def test_anonymous_is_redirected_to_login(client, customer, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.url == f"{LOGIN}?next={path}"


def test_switcher_lists_all_of_a_users_customers(admin_user, other_customer):
    third = CustomerFactory(name="Initech", slug="initech")
    MembershipFactory(user=admin_user, customer=other_customer, role=Role.OPERATOR)
    MembershipFactory(user=admin_user, customer=third, role=Role.VIEWER)
    client = Client()
    client.force_login(admin_user)
    body = client.get(reverse("acura_portal:dashboard", args=["acme"])).content.decode()
    switcher = body.split('data-testid="customer-switcher"', 1)[1].split("</details>", 1)[0]
    for slug, name in [("acme", "Acme"), ("globex", "Globex"), ("initech", "Initech")]:
        assert reverse("acura_portal:dashboard", args=[slug]) in switcher
        assert name in switcher
    assert 'aria-current="true">Acme' in switcher


def test_switcher_leaves_out_inactive_customers(admin_user, other_customer):
    MembershipFactory(user=admin_user, customer=other_customer)
    other_customer.is_active = False
    other_customer.save()
    client = Client()
    client.force_login(admin_user)
    body = client.get(reverse("acura_portal:dashboard", args=["acme"])).content.decode()
    assert "/c/globex/" not in body
