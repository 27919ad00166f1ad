"""``GET /api/v1/agent/cloud/``: an appliance agent reads its cloud's access settings (the
one place a cloud's password leaves the server); other agents get 404."""

from clouds.services.clouds import cloud_create

from .conftest import client_for, enroll

API = "/api/v1/agent/cloud/"


def make_cloud(customer, name="vcenter"):
    return cloud_create(
        customer,
        platform="vmware",
        name=name,
        endpoint="vcenter.example",
        login="backup@vsphere.local",
        password="pa55-w0rd",
        options={"enforce_quiesce": True, "on_replication_finish": "power_on"},
        check=False,
    )


def test_an_appliance_reads_its_clouds_settings(customer):
    cloud = make_cloud(customer)
    enrolled = enroll(customer, platform="vmware", cloud=cloud)
    response = client_for(enrolled.text).get(API)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == cloud.pk and body["password"] == "pa55-w0rd"
    assert (body["endpoint"], body["login"]) == ("vcenter.example", "backup@vsphere.local")
    assert body["enforce_quiesce"] is True and body["on_replication_finish"] == "power_on"


def test_an_agent_without_a_cloud_gets_404(customer):
    enrolled = enroll(customer, platform="linux")
    response = client_for(enrolled.text).get(API)
    assert response.status_code == 404
    assert "no cloud" in response.json()["error"]["message"]


def test_an_unreadable_password_is_a_clear_409(customer, settings):
    cloud = make_cloud(customer)
    enrolled = enroll(customer, platform="vmware", cloud=cloud)
    settings.SECRET_KEY = "rotated-without-a-fallback" * 3
    response = client_for(enrolled.text).get(API)
    assert response.status_code == 409
    assert "Enter the password again" in response.json()["error"]["message"]


def test_without_a_credential_it_is_401(customer, anon):
    assert anon.get(API).status_code == 401
