"""Clouds and download links for the Manage Clouds / Download links tests."""

from django.db import connection

from clouds.models import Cloud
from clouds.services.clouds import cloud_create
from clouds.services.downloads import download_link_create

PASSWORD = "Sup3r-secret!pw"  # distinctive, so a leak into a page or a column is found


def make_cloud(customer, name="vcenter", platform="vmware", password=PASSWORD, **fields):
    """A cloud registered without a connection check (``check=False``, fixtures only)."""
    endpoint = fields.pop("endpoint", "vcenter.example.test" if platform == "vmware" else "")
    return cloud_create(
        customer,
        platform=platform,
        name=name,
        endpoint=endpoint or "https://engine.example.test/ovirt-engine/api",
        login=fields.pop("login", "administrator@vsphere.local"),
        password=password,
        check=False,
        **fields,
    )


def make_link(customer, platform="linux", **kwargs):
    """A new download link (``.link``, ``.text``, ``.url``); Linux defaults to a .deb."""
    if platform == "linux":
        kwargs.setdefault("distro", "debian")
        kwargs.setdefault("driver", "prebuilt")
    kwargs.setdefault("server_url", "http://testserver")
    return download_link_create(customer, platform=platform, **kwargs)


def raw_cloud_row(cloud: Cloud) -> str:
    """Every column of the cloud's row as the database stores it, joined."""
    table = Cloud._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [cloud.pk])
        return " ".join(str(value) for value in cursor.fetchone())
