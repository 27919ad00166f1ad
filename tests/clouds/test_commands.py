"""``create_enrollment_token``, ``revoke_enrollment_token``, ``revoke_agent_credential``."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from clouds.models import AgentCredential, Cloud, EnrollmentToken
from clouds.services import EnrollmentRefused, agent_enroll
from tests.factories import MachineGroupFactory

from .conftest import enroll


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def test_create_prints_the_token_last_and_it_enrolls(customer, group):
    lines = run(
        "create_enrollment_token",
        "--customer",
        "acme",
        "--platform",
        "vmware",
        "--group",
        "Web servers",
        "--expires-hours",
        "48",
        "--uses",
        "3",
    )
    token_text = lines[-1]
    token = EnrollmentToken.objects.for_customer(customer).get()
    assert token_text.startswith(f"acet_{token.prefix}.")
    assert (token.platform, token.group, token.max_uses) == ("vmware", group, 3)
    assert "revoke_enrollment_token" in lines[0] and token.prefix in lines[0]
    enrolled = agent_enroll(token_text, hostname="proxy", version="1")
    assert enrolled.agent.group == group and enrolled.agent.platform == "vmware"


def test_cloud_makes_an_appliance_token_for_that_cloud(customer, other_customer):
    cloud = Cloud.objects.create(customer=customer, name="vc-prod", platform="vmware")
    Cloud.objects.create(customer=other_customer, name="vc-theirs", platform="vmware")
    lines = run(
        "create_enrollment_token",
        "--customer",
        "acme",
        "--platform",
        "vmware",
        "--cloud",
        "VC-Prod",
    )
    assert "cloud vc-prod" in lines[0]
    enrolled = agent_enroll(lines[-1], hostname="appliance", version="1")
    assert enrolled.agent.cloud == cloud and enrolled.agent.platform == "vmware"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--platform", "vmware", "--cloud", "nope"], "has no cloud 'nope'"),
        (["--platform", "vmware", "--cloud", "vc-theirs"], "has no cloud 'vc-theirs'"),
        (["--platform", "ovirt", "--cloud", "vc-prod"], "is a VMware"),
    ],
)
def test_a_bad_cloud_creates_nothing(customer, other_customer, args, message):
    Cloud.objects.create(customer=customer, name="vc-prod", platform="vmware")
    Cloud.objects.create(customer=other_customer, name="vc-theirs", platform="vmware")
    with pytest.raises(CommandError, match=message):
        run("create_enrollment_token", "--customer", "acme", *args)
    assert not EnrollmentToken.objects.all_customers().exists()


def test_defaults_one_use_for_a_day(customer):
    run("create_enrollment_token", "--customer", "acme", "--platform", "linux")
    token = EnrollmentToken.objects.for_customer(customer).get()
    assert token.max_uses == 1 and token.group is None
    assert 23.9 < (token.expires_at - token.created_at).total_seconds() / 3600 <= 24


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customer", "nobody", "--platform", "linux"], "No customer with the slug 'nobody'"),
        (["--customer", "acme", "--platform", "os2"], "Unknown platform 'os2'"),
        (["--customer", "acme", "--platform", "linux", "--group", "Nope"], "no machine group"),
        (["--customer", "acme", "--platform", "linux", "--uses", "x"], "--uses must be a whole"),
        (["--customer", "acme", "--platform", "linux", "--uses", "0"], "--uses: Must be between"),
        (
            ["--customer", "acme", "--platform", "linux", "--expires-hours", "-2"],
            "--expires-hours: Must be between",
        ),
        (
            ["--customer", "acme", "--platform", "linux", "--expires-hours", "1.5"],
            "--expires-hours must be a whole number",
        ),
    ],
)
def test_bad_options_create_nothing(customer, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_enrollment_token", *args)
    assert not EnrollmentToken.objects.all_customers().exists()


def test_group_of_another_customer_is_unknown(customer, other_customer):
    MachineGroupFactory(customer=other_customer, name="Theirs")
    with pytest.raises(CommandError, match="no machine group 'Theirs'"):
        run(
            "create_enrollment_token",
            "--customer",
            "acme",
            "--platform",
            "linux",
            "--group",
            "Theirs",
        )


def test_inactive_customer(customer):
    customer.is_active = False
    customer.save()
    with pytest.raises(CommandError, match="inactive"):
        run("create_enrollment_token", "--customer", "acme", "--platform", "linux")


@pytest.mark.parametrize("form", ["prefix", "token"])
def test_revoke_token(customer, form):
    text = run("create_enrollment_token", "--customer", "acme", "--platform", "linux")[-1]
    token = EnrollmentToken.objects.for_customer(customer).get()
    lines = run("revoke_enrollment_token", token.prefix if form == "prefix" else text)
    assert lines == [f"Revoked enrollment token {token.prefix} of acme."]
    with pytest.raises(EnrollmentRefused, match="revoked"):
        agent_enroll(text, hostname="h", version="1")
    assert "already revoked" in run("revoke_enrollment_token", token.prefix)[0]


@pytest.mark.parametrize("arg", ["", "acet_", "ffffffffffff"])
def test_revoke_unknown_token(db, arg):
    with pytest.raises(CommandError):
        run("revoke_enrollment_token", arg)


def test_revoke_agent_credential(customer, other_customer):
    agent = enroll(customer).agent
    other = enroll(other_customer).agent
    assert run("revoke_agent_credential", "--customer", "acme", str(agent.pk)) == [
        f"Revoked the credential of agent {agent.display_id}."
    ]
    assert AgentCredential.objects.for_customer(customer).get().revoked_at is not None
    assert (
        "no active credential"
        in run("revoke_agent_credential", "--customer", "acme", str(agent.pk))[0]
    )
    with pytest.raises(CommandError, match=f"has no agent {other.pk}"):
        run("revoke_agent_credential", "--customer", "acme", str(other.pk))
    with pytest.raises(CommandError, match="must be a number"):
        run("revoke_agent_credential", "--customer", "acme", "seven")
    assert AgentCredential.objects.for_customer(other_customer).get().revoked_at is None
