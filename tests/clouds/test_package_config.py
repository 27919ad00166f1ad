"""What a download link's package tells the agent: the portal URL, a working enrollment token
derived from the link, the portal certificate's fingerprint to pin (``ACURA_TLS_CERT_FILE``),
the customer, cloud, platform, role, group and appliance network — and never a password."""

import hashlib
import json
import ssl
import subprocess
import zipfile
from pathlib import Path

from clouds.services import agent_enroll
from clouds.services.clouds import cloud_create
from clouds.services.downloads import (
    download_link_create,
    download_link_serve,
    package_config,
)
from clouds.tokens import token_parse
from tests.net_support import make_certificates


def config_of(new):
    return package_config(new.link, token_parse("acdl", new.text).secret)


def test_the_packaged_token_enrolls_into_the_links_group(customer, group):
    new = download_link_create(
        customer, platform="windows", server_url="https://dr.example", group=group
    )
    config = config_of(new)
    assert (config["server"], config["platform"], config["role"]) == (
        "https://dr.example",
        "windows",
        "host",
    )
    assert (
        config["customer"] == {"id": customer.pk, "slug": "acme"} and config["group"] == group.name
    )
    enrolled = agent_enroll(config["enrollment_token"], hostname="win-01", version="1.0")
    assert (enrolled.agent.group, enrolled.agent.platform) == (group, "windows")
    new.link.enrollment_token.refresh_from_db()
    assert new.link.enrollment_token.uses == 1


def test_the_portal_certificate_is_pinned(customer, settings, tmp_path):
    certificates = make_certificates(tmp_path / "tls")
    settings.TLS_CERT_FILE = str(certificates.cert_file)
    new = download_link_create(customer, platform="windows", server_url="https://dr.example")
    der = ssl.PEM_cert_to_DER_cert(Path(certificates.cert_file).read_text())
    assert config_of(new)["server_fingerprint"] == hashlib.sha256(der).hexdigest()


def test_an_appliance_config_names_its_cloud_but_not_its_password(customer):
    cloud = cloud_create(
        customer,
        platform="vmware",
        name="vcenter",
        endpoint="vcenter.example",
        login="backup",
        password="do-not-ship-me",
        check=False,
    )
    network = {
        "mode": "static",
        "ip": "10.0.0.5",
        "netmask": "255.255.255.0",
        "gateway": "10.0.0.1",
        "dns": "10.0.0.2",
    }
    new = download_link_create(
        customer, platform="vmware", server_url="http://p", cloud=cloud, network=network
    )
    config = config_of(new)
    assert config["cloud_id"] == cloud.pk and config["role"] == "appliance"
    assert config["cloud"] == {"name": "vcenter", "type": "vmware", "endpoint": "vcenter.example"}
    assert config["network"]["dns"] == ["10.0.0.2"]
    assert "do-not-ship-me" not in json.dumps(config)


def test_the_windows_service_wrapper_setting_reaches_the_msi(customer, settings, tmp_path):
    host = tmp_path / "WinSW-NET4.exe"
    host.write_bytes(b"MZ stand-in for the WinSW binary")
    settings.WINDOWS_SERVICE_HOST = str(host)
    new = download_link_create(customer, platform="windows", server_url="http://p")
    served = download_link_serve(new.text)
    zipfile.ZipFile(served.path).extract("hwragent.msi", tmp_path)
    table = subprocess.run(
        ["msiinfo", "export", str(tmp_path / "hwragent.msi"), "ServiceInstall"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "hwragent" in table.splitlines()[-1]
