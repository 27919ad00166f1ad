"""``create_api_key`` and ``revoke_api_key``: the operator's side of the interim agent keys."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from storage.models import StorageApiKey

from .conftest import Agent, make_disk
from .error_support import SNAPSHOTS, error_of


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_prints_a_working_token_last(customer):
    lines = run("create_api_key", "--customer", "acme", "--name", "backup host 1")
    token = lines[-1]
    key = StorageApiKey.objects.for_customer(customer).get()
    assert token.startswith(f"ak_{key.prefix}.") and key.name == "backup host 1"
    assert token.split(".", 1)[1] not in key.secret_hash  # only a hash is kept
    assert key.prefix in lines[0] and "revoke_api_key" in lines[0]
    response = Agent(token).open(make_disk(customer))
    assert response.status_code == 201
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_create_twice_gives_distinct_keys(customer):
    first = run("create_api_key", "--customer", "acme", "--name", "a")[-1]
    second = run("create_api_key", "--customer", "acme", "--name", "a")[-1]
    assert first != second
    assert StorageApiKey.objects.for_customer(customer).count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customer", "nope", "--name", "x"], "No customer with the slug 'nope'"),
        (["--customer", "acme", "--name", "  "], "--name must not be empty"),
        (["--customer", "acme", "--name", "x" * 101], "at most 100"),
        (["--customer", "acme"], "--name"),
        (["--name", "x"], "--customer"),
    ],
)
def test_create_refuses_bad_arguments(customer, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_api_key", *args)
    assert not StorageApiKey.objects.all_customers().exists()


def test_create_refuses_an_inactive_customer(customer):
    customer.is_active = False
    customer.save()
    with pytest.raises(CommandError, match="inactive"):
        run("create_api_key", "--customer", "acme", "--name", "x")
    assert not StorageApiKey.objects.all_customers().exists()


@pytest.mark.parametrize("form", ["prefix", "token"])
def test_revoke_shuts_the_key_out(customer, other_customer, form):
    token = run("create_api_key", "--customer", "acme", "--name", "x")[-1]
    other_token = run("create_api_key", "--customer", "globex", "--name", "y")[-1]
    prefix = token[3:].split(".")[0]
    assert Agent(token).client.get(SNAPSHOTS).status_code == 200

    lines = run("revoke_api_key", prefix if form == "prefix" else token)
    assert f"Revoked API key {prefix}" in lines[-1] and "acme" in lines[-1]
    error_of(Agent(token).client.get(SNAPSHOTS), 401, "This API key was revoked.")
    assert Agent(other_token).client.get(SNAPSHOTS).status_code == 200  # only that key

    again = run("revoke_api_key", prefix)
    assert "already revoked" in again[-1]
    error_of(Agent(token).client.get(SNAPSHOTS), 401, "revoked")


@pytest.mark.parametrize(("arg", "message"), [("deadbeef", "No API key"), ("  ", "prefix")])
def test_revoke_unknown_prefix(customer, arg, message):
    token = run("create_api_key", "--customer", "acme", "--name", "x")[-1]
    with pytest.raises(CommandError, match=message):
        run("revoke_api_key", arg)
    assert Agent(token).client.get(SNAPSHOTS).status_code == 200
