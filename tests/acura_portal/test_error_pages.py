"""Error pages are the portal's own, and say what happened without leaking anything."""


def test_404_page_for_a_foreign_customer(stranger_client, customer, settings):
    settings.DEBUG = False
    response = stranger_client.get(f"/c/{customer.slug}/machines/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "belongs to a customer you are not a member of" in body
    assert customer.name not in body


def test_403_page_names_the_role_needed(viewer_client, customer):
    response = viewer_client.post(f"/c/{customer.slug}/groups/new/", {"name": "x"})
    assert response.status_code == 403
    assert "This needs the Operator role." in response.content.decode()
