"""The dashboard pages in a real browser (Debian's chromium driven by Playwright)."""

import re

import pytest
from playwright.sync_api import expect

from protection.models import Machine, MachineStatus
from tenants.models import Role
from tests.factories import CustomerFactory, MachineFactory, MachineGroupFactory, MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_dashboard_and_customer_switcher(page, login, admin_user, customer):
    second = CustomerFactory(name="Zeta Corp", slug="zeta")
    MembershipFactory(user=admin_user, customer=second, role=Role.VIEWER)
    MachineFactory(customer=customer, status=MachineStatus.ERROR, status_message="disk gone")

    login(admin_user)
    # Two customers: the chooser lists both.
    expect(page.get_by_role("heading", name="Choose a customer")).to_be_visible()
    page.get_by_role("link", name="Acme").click()
    expect(page).to_have_url(re.compile(r"/c/acme/$"))
    expect(page.locator(".card", has_text="In error")).to_contain_text("1")

    page.locator("[data-testid=customer-switcher] summary").click()
    page.locator("[data-testid=customer-switcher]").get_by_role("link", name="Zeta Corp").click()
    expect(page).to_have_url(re.compile(r"/c/zeta/$"))
    expect(page.get_by_test_id("dashboard-empty")).to_be_visible()


def test_wrong_password_shows_an_error(page, admin_user):
    page.goto("/accounts/login/")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".errorlist")).to_contain_text("correct username and password")


def test_select_all_and_start_protection(page, login, operator_user, customer, group):
    machines = [MachineFactory(customer=customer, group=group) for _ in range(3)]
    login(operator_user)
    page.goto(f"/c/{customer.slug}/machines/")
    start = page.get_by_role("button", name="Start Protection")
    expect(start).to_be_disabled()  # nothing selected yet
    page.locator("[data-select-all=machines]").check()
    expect(page.locator("[data-selected-count]").first).to_have_text("3")
    start.click()
    expect(page.locator(".messages")).to_contain_text("Started protection of 3 machines.")
    statuses = set(
        Machine.objects.for_customer(customer)
        .filter(pk__in=[m.pk for m in machines])
        .values_list("status", flat=True)
    )
    assert statuses == {MachineStatus.PROTECTED}
    expect(page.get_by_test_id("machine-table")).to_contain_text("Protected")


def test_search_filters_the_list(page, login, viewer_user, customer):
    MachineFactory(customer=customer, name="db-primary", ip_addresses=["10.1.1.5"])
    MachineFactory(customer=customer, name="web-frontend", ip_addresses=["10.2.2.9"])
    login(viewer_user)
    page.goto(f"/c/{customer.slug}/machines/")
    page.fill("#id_q", "10.1.1")
    page.get_by_role("button", name="Filter").click()
    table = page.get_by_test_id("machine-table")
    expect(table).to_contain_text("db-primary")
    expect(table).not_to_contain_text("web-frontend")
    # Viewers see no bulk actions.
    expect(page.get_by_role("button", name="Start Protection")).to_have_count(0)


def test_deleting_a_non_empty_group_moves_its_machines(page, login, operator_user, customer):
    old = MachineGroupFactory(customer=customer, name="Old")
    new = MachineGroupFactory(customer=customer, name="New")
    machine = MachineFactory(customer=customer, group=old)
    login(operator_user)
    page.goto(f"/c/{customer.slug}/groups/{old.pk}/delete/")
    expect(page.get_by_test_id("group-delete-form")).to_contain_text("This group has 1 machine")
    page.get_by_test_id("group-delete-form").locator("select").select_option(label="New")
    page.get_by_role("button", name="Delete group").click()
    expect(page.locator(".messages")).to_contain_text("Deleted group Old.")
    machine.refresh_from_db()
    assert machine.group == new


def test_settings_page_shows_inheritance_and_saves(page, login, admin_user, customer, machine):
    login(admin_user)
    page.goto(f"/c/{customer.slug}/groups/{machine.group.pk}/settings/")
    expect(page.locator("body")).to_contain_text("Times are in Europe/Berlin")
    page.goto(f"/c/{customer.slug}/settings/")
    page.locator("input[name=keep_daily]").fill("30")
    page.get_by_role("button", name=re.compile("Save")).click()
    expect(page.locator(".messages")).to_contain_text("Replication settings saved.")
    page.goto(f"/c/{customer.slug}/machines/{machine.pk}/")
    expect(page.get_by_test_id("effective-settings")).to_contain_text("customer settings")
