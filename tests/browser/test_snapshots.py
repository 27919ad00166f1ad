"""Snapshot pages in a real browser: list, protect, download the raw image."""

import pytest
from playwright.sync_api import expect

from storage.models import Snapshot
from tests.storage_support import Agent, make_disk

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_protect_and_download_a_snapshot(page, login, operator_user, customer, tmp_path):
    disk = make_disk(customer)
    data = b"point in time " * 20000
    snapshot = Agent.enrolled(customer).replicate(disk, data)["snapshot"]
    login(operator_user)
    page.goto(f"/c/{customer.slug}/machines/{disk.machine_id}/snapshots/")
    expect(page.locator("body")).to_contain_text("Complete")

    page.get_by_role("button", name="Protect").first.click()
    expect(page.locator(".messages")).to_contain_text("protect")
    assert Snapshot.objects.for_customer(customer).get(pk=snapshot["id"]).protected is True

    with page.expect_download() as info:
        page.get_by_role("link", name="Download", exact=True).first.click()
    target = tmp_path / "image.raw"
    info.value.save_as(target)
    assert target.read_bytes() == data
    assert info.value.suggested_filename.endswith(".raw")
