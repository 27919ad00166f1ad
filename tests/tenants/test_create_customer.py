"""``manage.py create_customer``: creates what it says, or refuses and creates nothing."""

import re
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from tenants.models import Customer, Membership, Role
from tests.e2e_support import isolated_env, manage
from tests.factories import CustomerFactory, UserFactory

User = get_user_model()
ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> str:
    out = StringIO()
    call_command("create_customer", *args, stdout=out)
    return out.getvalue().strip()


def nothing_created():
    return not Customer.objects.exists() and not User.objects.exists()


@pytest.mark.django_db
def test_customer_only():
    line = run("acme", "--name", "Acme Corp", "--time-zone", "Europe/Berlin")
    customer = Customer.objects.get(slug="acme")
    assert (customer.name, customer.time_zone, customer.is_active) == (
        "Acme Corp",
        "Europe/Berlin",
        True,
    )
    assert not customer.memberships.exists()
    assert line == "Created customer acme (Acme Corp, Europe/Berlin)"
    assert len(line.splitlines()) == 1


@pytest.mark.django_db
def test_new_admin_with_password():
    line = run("acme", "--name", "Acme", "--admin", "alice", "--password", "Tr0ub4dor&3-long")
    alice = User.objects.get(username="alice")
    assert alice.check_password("Tr0ub4dor&3-long")
    assert Membership.objects.get(user=alice).role == Role.ADMIN
    assert "with new user alice as admin" in line
    assert "Tr0ub4dor" not in line


@pytest.mark.django_db
def test_generated_password_is_printed_once_and_works():
    line = run("acme", "--name", "Acme", "--admin", "alice", "--role", "operator")
    password = line.rsplit("password: ", 1)[1]
    assert len(password) >= 16 and line.count(password) == 1
    alice = User.objects.get(username="alice")
    assert alice.check_password(password)
    assert Membership.objects.get(user=alice).role == Role.OPERATOR


@pytest.mark.django_db
def test_existing_user_is_added_without_touching_the_password(password):
    bob = UserFactory(username="bob")
    line = run("acme", "--name", "Acme", "--admin", "bob", "--role", "viewer")
    assert line.endswith("with existing user bob as viewer")
    bob.refresh_from_db()
    assert bob.check_password(password)
    assert Membership.objects.get(user=bob).role == Role.VIEWER


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad_Slug", "--name", "X"], "“Bad_Slug” is not a valid slug"),
        (["acme-", "--name", "X"], "is not a valid slug"),
        (["a" * 51, "--name", "X"], "is not a valid slug"),
        (["acme", "--name", "  "], "Give the customer a name."),
        (["acme", "--name", "X", "--time-zone", "Mars/Olympus"], "not a known time zone"),
        (["acme", "--name", "X", "--admin", "al", "--role", "owner"], "“owner” is not a role"),
        (["acme", "--name", "X", "--password", "Tr0ub4dor&3-long"], "A password needs a user"),
        (["acme", "--name", "X", "--admin", "al", "--password", "123"], "--password: This"),
        (["acme", "--name", "X", "--admin", "bad name!"], "Enter a valid username"),
    ],
)
def test_invalid_values_are_refused_and_create_nothing(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run(*args)
    assert nothing_created()


@pytest.mark.django_db
def test_existing_slug_is_refused():
    CustomerFactory(slug="acme", name="Old Acme")
    with pytest.raises(
        CommandError, match=re.escape("A customer with the slug “acme” already exists.")
    ):
        run("acme", "--name", "New Acme", "--admin", "alice")
    assert Customer.objects.get().name == "Old Acme"
    assert not User.objects.exists()


@pytest.mark.django_db
def test_password_for_an_existing_user_is_refused():
    UserFactory(username="bob")
    with pytest.raises(CommandError, match="already exists; leave out the password"):
        run("acme", "--name", "Acme", "--admin", "bob", "--password", "Tr0ub4dor&3-long")
    assert not Customer.objects.exists()
    assert not Membership.objects.exists()


def test_exit_code_and_output_of_a_real_process(tmp_path):
    """The command as provisioning scripts run it: exit status 0, then 1 for a duplicate."""
    with isolated_env(tmp_path) as env:

        def run_manage(*args):
            return manage(list(args), env)

        assert run_manage("migrate", "--verbosity", "0").returncode == 0
        ok = run_manage("create_customer", "acme", "--name", "Acme", "--admin", "alice")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.startswith("Created customer acme")
        duplicate = run_manage("create_customer", "acme", "--name", "Acme")
        assert duplicate.returncode == 1
        assert "A customer with the slug “acme” already exists." in duplicate.stderr
