from django.urls import reverse
from tests.clouds.cloud_support import make_cloud, make_link, PASSWORD

def test_smoke(admin_client_, viewer_client, operator_client, customer, group):
    c = make_cloud(customer)
    o = make_cloud(customer, name="engine", platform="ovirt")
    for cl in (admin_client_, viewer_client, operator_client):
        r = cl.get(reverse("clouds:cloud_list", args=["acme"]))
        assert r.status_code == 200, r.content
        r = cl.get(reverse("clouds:cloud_edit", args=["acme", c.pk]))
        assert r.status_code == 200
        r = cl.get(reverse("clouds:cloud_edit", args=["acme", o.pk]))
        assert r.status_code == 200
    r = admin_client_.get(reverse("clouds:cloud_delete", args=["acme", c.pk]))
    assert r.status_code == 200
    r = operator_client.post(reverse("clouds:cloud_download", args=["acme", c.pk]), {"group": group.pk})
    assert r.status_code == 302, r
    r = operator_client.get(r["Location"])
    assert r.status_code == 200
    print(r.content.decode()[-6000:])
    r = viewer_client.get(reverse("clouds:link_list", args=["acme"]))
    assert r.status_code == 200
    new = make_link(customer)
    r = viewer_client.get(reverse("clouds:link_detail", args=["acme", new.link.pk]))
    assert r.status_code == 200
    r = admin_client_.post(reverse("clouds:cloud_delete", args=["acme", c.pk]))
    print(r, [str(m) for m in r.wsgi_request._messages])
