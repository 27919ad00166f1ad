"""The users page: every member sees it, only admins change it, strangers get 404."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tenants.models import Membership, Role
from tests.factories import MembershipFactory, UserFactory

User = get_user_model()


def url(name, slug="acme", pk=None):
    args = [slug] if pk is None else [slug, pk]
    return reverse(f"tenants:{name}", args=args)


@pytest.fixture
def member(customer):
    """A viewer whose role the admin edits in these tests."""
    return MembershipFactory(
        customer=customer,
        role=Role.VIEWER,
        user=UserFactory(username="victor", first_name="Victor", last_name="Vance"),
    )


def add(client, **data):
    return client.post(url("membership_create"), {"role": Role.VIEWER, **data})


# --- who may see and do what ----------------------------------------------------------


@pytest.mark.parametrize("role_client", [Role.VIEWER, Role.OPERATOR, Role.ADMIN], indirect=True)
def test_every_member_sees_the_list(role_client, admin_user, member):
    response = role_client.get(url("membership_list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert admin_user.username in body
    assert "victor" in body and "Victor Vance" in body and "victor@example.com" in body
    assert "Viewer" in body and "never" in body


def test_only_admins_see_the_manage_links(viewer_client, admin_client_, member):
    edit = url("membership_update", pk=member.pk)
    assert edit not in viewer_client.get(url("membership_list")).content.decode()
    assert edit in admin_client_.get(url("membership_list")).content.decode()


@pytest.mark.parametrize("role_client", [Role.VIEWER, Role.OPERATOR], indirect=True)
def test_viewers_and_operators_get_403_on_changes(role_client, member):
    for name, pk in [
        ("membership_create", None),
        ("membership_update", member.pk),
        ("membership_delete", member.pk),
    ]:
        assert role_client.get(url(name, pk=pk)).status_code == 403
        assert role_client.post(url(name, pk=pk), {"role": Role.ADMIN}).status_code == 403
    member.refresh_from_db()
    assert member.role == Role.VIEWER
    assert Membership.objects.filter(pk=member.pk).exists()


def test_stranger_gets_404_on_every_users_url(stranger_client, stranger_user, member):
    for name, pk in [
        ("membership_list", None),
        ("membership_create", None),
        ("membership_update", member.pk),
        ("membership_delete", member.pk),
    ]:
        assert stranger_client.get(url(name, pk=pk)).status_code == 404
        assert stranger_client.post(url(name, pk=pk), {"role": Role.ADMIN}).status_code == 404
        if pk is not None:
            # Their own customer's URL with acme's membership id: still nothing to see.
            own = url(name, slug="globex", pk=pk)
            assert stranger_client.get(own).status_code == 404
            assert stranger_client.post(own, {"role": Role.ADMIN}).status_code == 404
    member.refresh_from_db()
    assert member.role == Role.VIEWER


def test_anonymous_is_sent_to_login(client, customer):
    response = client.get(url("membership_list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("tenants:login"))


# --- adding ---------------------------------------------------------------------------


def test_add_page_offers_roles_with_their_help(admin_client_):
    body = admin_client_.get(url("membership_create")).content.decode()
    assert "Sees everything, changes nothing." in body
    assert "Also manages replication settings, users and platforms." in body


@pytest.mark.parametrize("login", ["outsider", "OUTSIDER", "outsider@example.com"])
def test_add_existing_user_by_username_or_email(admin_client_, customer, login):
    outsider = UserFactory(username="outsider")
    response = add(admin_client_, mode="existing", login=login, role=Role.OPERATOR)
    assert response.status_code == 302
    assert Membership.objects.get(customer=customer, user=outsider).role == Role.OPERATOR
    page = admin_client_.get(response.url).content.decode()
    assert "outsider was added as Operator" in page


def test_add_unknown_user_is_a_form_error(admin_client_, customer):
    response = add(admin_client_, mode="existing", login="nobody")
    assert response.status_code == 200
    assert "No user has the username or email “nobody”." in response.content.decode()
    assert Membership.objects.filter(customer=customer).count() == 1


def test_adding_a_member_again_is_a_clear_error(admin_client_, member):
    response = add(admin_client_, mode="existing", login="victor", role=Role.ADMIN)
    assert response.status_code == 200
    assert "victor is already a member of Acme." in response.content.decode()
    member.refresh_from_db()
    assert member.role == Role.VIEWER


def test_member_of_another_customer_can_be_added(admin_client_, customer, stranger_user):
    response = add(admin_client_, mode="existing", login=stranger_user.username)
    assert response.status_code == 302
    assert stranger_user.memberships.count() == 2


def test_add_new_user_with_typed_password(admin_client_, customer):
    response = add(
        admin_client_,
        mode="new",
        username="nina",
        email="nina@example.com",
        first_name="Nina",
        password="a-Long-and-unusual-pw-42",
        role=Role.ADMIN,
    )
    assert response.status_code == 302
    nina = User.objects.get(username="nina")
    assert nina.check_password("a-Long-and-unusual-pw-42")
    assert nina.first_name == "Nina" and nina.email == "nina@example.com"
    assert Membership.objects.get(customer=customer, user=nina).role == Role.ADMIN


def test_new_user_password_goes_through_django_validators(admin_client_):
    response = add(admin_client_, mode="new", username="nina", password="12345678")
    body = response.content.decode()
    assert response.status_code == 200
    assert "This password is too common." in body
    assert not User.objects.filter(username="nina").exists()


def test_generated_password_is_shown_once(admin_client_, customer):
    response = add(admin_client_, mode="new", username="gary", role=Role.OPERATOR)
    assert response.status_code == 200
    password = response.context["password"]
    assert len(password) >= 16
    assert password in response.content.decode()
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    gary = User.objects.get(username="gary")
    assert gary.check_password(password)
    assert Membership.objects.get(customer=customer, user=gary).role == Role.OPERATOR
    # Nothing keeps it: the next pages do not show it again.
    assert password not in admin_client_.get(url("membership_list")).content.decode()
    assert password not in admin_client_.get(url("membership_create")).content.decode()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"username": ""}, "Give the new user a username."),
        ({"username": "victor"}, "A user named “victor” already exists"),
        ({"username": "neo", "email": "victor@example.com"}, "A user with the email"),
        ({"username": "bad name!"}, "Enter a valid username"),
        ({"username": "neo", "email": "not-an-email"}, "Enter a valid email address."),
    ],
)
def test_new_user_errors_change_nothing(admin_client_, member, data, error):
    users = User.objects.count()
    response = add(admin_client_, mode="new", **data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert User.objects.count() == users
    assert Membership.objects.count() == 2


def test_invalid_role_is_refused(admin_client_, customer):
    response = add(admin_client_, mode="new", username="neo", role="owner")
    assert response.status_code == 200
    assert not User.objects.filter(username="neo").exists()


# --- changing roles and removing ------------------------------------------------------


def test_admin_changes_a_role(admin_client_, member):
    assert admin_client_.get(url("membership_update", pk=member.pk)).status_code == 200
    response = admin_client_.post(url("membership_update", pk=member.pk), {"role": Role.ADMIN})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == Role.ADMIN


def test_last_admin_cannot_be_demoted(admin_client_, admin_user, customer):
    mine = Membership.objects.get(customer=customer, user=admin_user)
    response = admin_client_.post(url("membership_update", pk=mine.pk), {"role": Role.VIEWER})
    assert response.status_code == 200
    assert "is the last admin of Acme" in response.content.decode()
    mine.refresh_from_db()
    assert mine.role == Role.ADMIN


def test_admin_may_demote_themselves_when_another_admin_exists(admin_client_, admin_user, member):
    member.role = Role.ADMIN
    member.save()
    mine = Membership.objects.get(customer=member.customer, user=admin_user)
    response = admin_client_.post(url("membership_update", pk=mine.pk), {"role": Role.VIEWER})
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.role == Role.VIEWER
    # Now a viewer: the list is still there, the edit pages are not.
    assert admin_client_.get(response.url).status_code == 200
    assert admin_client_.get(url("membership_update", pk=member.pk)).status_code == 403


def test_admin_removes_a_member_but_not_the_user(admin_client_, member):
    assert admin_client_.get(url("membership_delete", pk=member.pk)).status_code == 200
    response = admin_client_.post(url("membership_delete", pk=member.pk))
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert User.objects.filter(username="victor").exists()
    # Removed members lose access at once.
    assert admin_client_.get(url("membership_update", pk=member.pk)).status_code == 404


def test_last_admin_cannot_remove_themselves(admin_client_, admin_user, customer, member):
    mine = Membership.objects.get(customer=customer, user=admin_user)
    response = admin_client_.post(url("membership_delete", pk=mine.pk))
    assert response.status_code == 400
    assert "is the last admin of Acme and cannot be removed" in response.content.decode()
    assert Membership.objects.filter(pk=mine.pk).exists()


def test_admin_may_leave_when_another_admin_exists(admin_client_, admin_user, customer, member):
    member.role = Role.ADMIN
    member.save()
    mine = Membership.objects.get(customer=customer, user=admin_user)
    response = admin_client_.post(url("membership_delete", pk=mine.pk))
    assert response.status_code == 302
    assert response.url == reverse("tenants:home")
    assert admin_client_.get(url("membership_list")).status_code == 404


def test_membership_of_another_customer_is_404_for_an_admin(admin_client_, stranger_user):
    theirs = stranger_user.memberships.get()
    for name in ("membership_update", "membership_delete"):
        assert admin_client_.get(url(name, pk=theirs.pk)).status_code == 404
        assert admin_client_.post(url(name, pk=theirs.pk), {"role": Role.VIEWER}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.role == Role.ADMIN


def test_new_user_fields_win_when_the_radio_was_left_on_existing(admin_client_, customer):
    response = add(admin_client_, mode="existing", login="", username="nora")
    assert response.status_code == 200  # the generated-password page
    assert Membership.objects.filter(customer=customer, user__username="nora").exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_are_404_for_foreign_ids_and_405_for_own(
    admin_client_, stranger_user, member, method
):
    theirs = stranger_user.memberships.get()
    for name in ("membership_update", "membership_delete"):
        assert getattr(admin_client_, method)(url(name, pk=theirs.pk)).status_code == 404
        assert getattr(admin_client_, method)(url(name, pk=member.pk)).status_code == 405
