"""The replication settings pages of the customer, a group and a machine, with each role."""

from datetime import time

import pytest
from django.urls import reverse

from protection.models import KEEP_FIELDS, ReplicationPolicy
from protection.services.policy import policy_update
from tenants.models import Role

PAGES = ["customer", "group", "machine"]


def url_for(page, slug, group, machine):
    if page == "customer":
        return reverse("protection:customer_settings", args=[slug])
    if page == "group":
        return reverse("protection:group_settings", args=[slug, group.pk])
    return reverse("protection:machine_settings", args=[slug, machine.pk])


@pytest.fixture
def urls(customer, group, machine):
    return {page: url_for(page, "acme", group, machine) for page in PAGES}


def form_data(**overrides):
    """What a browser posts for an untouched form: everything inherits."""
    data = {
        "enabled": "",
        "interval_value": "",
        "interval_unit": "minutes",
        "window_mode": "",
        "window_start": "",
        "window_end": "",
        "window_days_inherit": "on",
        "bandwidth_limit_mbps": "",
        **dict.fromkeys(KEEP_FIELDS, ""),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def policies(customer):
    return list(ReplicationPolicy.objects.for_customer(customer).values())


# --- Roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", [Role.VIEWER, Role.OPERATOR, Role.ADMIN], indirect=True)
@pytest.mark.parametrize("page", PAGES)
def test_every_member_can_view(role_client, urls, page):
    response = role_client.get(urls[page])
    assert response.status_code == 200
    content = response.content.decode()
    assert "Times are in Europe/Berlin" in content
    assert 'data-testid="effective-settings"' in content


@pytest.mark.parametrize("page", PAGES)
def test_viewer_sees_read_only_page(viewer_client, urls, page):
    content = viewer_client.get(urls[page]).content.decode()
    assert 'data-testid="read-only"' in content
    assert 'data-testid="save"' not in content
    assert 'name="keep_last" min="0" placeholder="24" disabled' in content


@pytest.mark.parametrize("role_client", [Role.VIEWER, Role.OPERATOR], indirect=True)
@pytest.mark.parametrize("page", PAGES)
def test_viewer_and_operator_cannot_change_settings(role_client, customer, urls, page):
    assert role_client.post(urls[page], form_data(keep_last="3")).status_code == 403
    assert role_client.post(urls[page], {"reset": "1"}).status_code == 403
    assert policies(customer) == []


@pytest.mark.parametrize("page", PAGES)
def test_admin_saves_and_is_redirected_back(admin_client_, customer, urls, page):
    response = admin_client_.post(urls[page], form_data(keep_last="3"))
    assert response.status_code == 302
    assert response["Location"] == urls[page]
    [row] = policies(customer)
    assert row["keep_last"] == 3
    assert row["keep_daily"] is None
    page_after = admin_client_.get(urls[page]).content.decode()
    assert "Replication settings saved." in page_after
    assert 'data-testid="save"' in page_after


# --- What the page shows --------------------------------------------------------------------


def test_machine_page_names_the_group_it_inherits_from(admin_client_, customer, group, urls):
    policy_update(customer, group, {"keep_last": 7})
    content = admin_client_.get(urls["machine"]).content.decode()
    assert "Inherited: 7 \N{EM DASH} from group Web servers" in content
    assert "Inherited: 14 \N{EM DASH} from built-in default" in content
    assert 'placeholder="7"' in content


def test_customer_page_inherits_from_built_in_defaults(admin_client_, urls):
    content = admin_client_.get(urls["customer"]).content.decode()
    assert "Inherited: 24 \N{EM DASH} from built-in default" in content
    assert "Inherit (Enabled, from built-in default)" in content


def test_effective_table_shows_value_and_source(admin_client_, customer, group, machine, urls):
    policy_update(customer, customer, {"interval_minutes": 120})
    policy_update(customer, machine, {"bandwidth_limit_mbps": 50})
    content = admin_client_.get(urls["machine"]).content.decode()
    assert (
        '<tr data-setting="interval_minutes"><td>Interval</td><td>2 hours</td>'
        "<td>customer settings</td></tr>"
    ) in content
    assert (
        '<tr data-setting="bandwidth_limit_mbps"><td>Bandwidth limit</td><td>50 Mbit/s</td>'
        '<td><span class="badge">set here</span></td></tr>'
    ) in content
    assert "Set here; would otherwise inherit Unlimited from built-in default" in content


def test_customer_page_lists_levels_with_their_own_settings(admin_client_, customer, group, urls):
    policy_update(customer, group, {"keep_last": 7})
    content = admin_client_.get(urls["customer"]).content.decode()
    assert 'data-testid="overrides"' in content
    assert reverse("protection:group_settings", args=["acme", group.pk]) in content


def test_saved_values_come_back_into_the_form(admin_client_, customer, urls):
    policy_update(
        customer,
        customer,
        {"interval_minutes": 2880, "window_start": time(22), "window_end": time(6)},
    )
    content = admin_client_.get(urls["customer"]).content.decode()
    assert 'name="interval_value" value="2"' in content
    assert '<option value="days" selected>days</option>' in content
    assert 'value="22:00"' in content


# --- Form → service -------------------------------------------------------------------------


def test_interval_number_and_unit_become_minutes(admin_client_, customer, urls):
    admin_client_.post(urls["group"], form_data(interval_value="2", interval_unit="hours"))
    assert policies(customer)[0]["interval_minutes"] == 120


@pytest.mark.parametrize(("value", "unit"), [("4", "minutes"), ("8", "days"), ("0", "hours")])
def test_interval_out_of_range_is_shown_and_nothing_saved(
    admin_client_, customer, urls, value, unit
):
    response = admin_client_.post(
        urls["customer"], form_data(interval_value=value, interval_unit=unit)
    )
    assert response.status_code == 200
    assert "The interval must be between 5 minutes and 7 days." in response.content.decode()
    assert policies(customer) == []


def test_window_across_midnight_and_weekdays(admin_client_, customer, urls):
    data = form_data(
        window_mode="on",
        window_start="22:00",
        window_end="06:00",
        window_days_inherit=None,
        window_days=["1", "5"],
    )
    assert admin_client_.post(urls["machine"], data).status_code == 302
    [row] = policies(customer)
    assert row["window_enabled"] is True
    assert (row["window_start"], row["window_end"]) == (time(22), time(6))
    assert row["window_days"] == [1, 5]


def test_window_errors_are_shown(admin_client_, customer, urls):
    content = admin_client_.post(
        urls["customer"], form_data(window_start="08:00", window_end="08:00")
    ).content.decode()
    assert "The window end must differ from its start" in content
    content = admin_client_.post(
        urls["customer"], form_data(window_days_inherit=None)
    ).content.decode()
    assert "Choose at least one weekday, or inherit the weekdays." in content
    assert policies(customer) == []


def test_negative_keep_and_all_zero_retention_are_shown(admin_client_, customer, urls):
    content = admin_client_.post(urls["group"], form_data(keep_daily="-1")).content.decode()
    assert "Keep daily must be 0 or more." in content
    zeros = form_data(**dict.fromkeys(KEEP_FIELDS, "0"))
    content = admin_client_.post(urls["group"], zeros).content.decode()
    assert "Group &quot;Web servers&quot; would keep no snapshots" in content
    assert policies(customer) == []


def test_reset_to_inherited(admin_client_, customer, group, urls):
    policy_update(customer, group, {"keep_last": 3})
    assert 'data-testid="reset"' in admin_client_.get(urls["group"]).content.decode()
    response = admin_client_.post(urls["group"], {"reset": "1"})
    assert response.status_code == 302
    assert policies(customer) == []
    content = admin_client_.get(urls["group"]).content.decode()
    assert "now inherits everything" in content
    assert 'data-testid="reset"' not in content


def test_refused_reset_shows_the_reason(admin_client_, customer, group, machine, urls):
    policy_update(customer, customer, {**dict.fromkeys(KEEP_FIELDS, 0), "keep_yearly": 1})
    policy_update(customer, group, {"keep_daily": 7})
    policy_update(customer, machine, {"keep_yearly": 0})
    response = admin_client_.post(urls["group"], {"reset": "1"})
    assert response.status_code == 200
    assert "Machine &quot;web-01&quot; would keep no snapshots" in response.content.decode()
    assert len(policies(customer)) == 3


# --- Another customer's objects -------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "page"),
    [
        ("acme", "customer"),
        ("acme", "group"),
        ("acme", "machine"),
        ("globex", "group"),
        ("globex", "machine"),
    ],
)
def test_stranger_gets_404(stranger_client, customer, group, machine, slug, page):
    """A member of globex: acme's pages are 404, and so are acme's group and machine ids
    under globex's own prefix (globex's customer page is the stranger's own page)."""
    url = url_for(page, slug, group, machine)
    assert stranger_client.get(url).status_code == 404
    assert stranger_client.post(url, form_data(keep_last="1")).status_code == 404
    assert stranger_client.post(url, {"reset": "1"}).status_code == 404
    assert stranger_client.put(url).status_code == 404
    assert stranger_client.delete(url).status_code == 404
    assert ReplicationPolicy.objects.all_customers().count() == 0


def test_other_methods_are_not_allowed(admin_client_, urls):
    assert admin_client_.put(urls["group"]).status_code == 405
    assert admin_client_.delete(urls["machine"]).status_code == 405
