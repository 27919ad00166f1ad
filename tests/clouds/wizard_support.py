"""Driving the Register new platform wizard over HTTP (Django's test client)."""

import re

from django.urls import reverse

from clouds.models import WizardDraft


def start_url(slug="acme"):
    return reverse("clouds:wizard_start", args=[slug])


def step_url(draft, step, slug="acme"):
    return reverse("clouds:wizard_step", args=[slug, draft.pk, step])


def start(client, platform, slug="acme", **extra):
    """Step 1 from the start page; returns the new run (now at step 2)."""
    before = set(WizardDraft.objects.all_customers().values_list("pk", flat=True))
    response = client.post(start_url(slug), {"platform": platform, **extra})
    assert response.status_code == 302, response.content.decode()[:2000]
    (pk,) = set(WizardDraft.objects.all_customers().values_list("pk", flat=True)) - before
    draft = WizardDraft.objects.all_customers().get(pk=pk)
    assert response["Location"] == step_url(draft, 2, slug)
    return draft


def accept_requirements(client, draft, slug="acme"):
    response = client.post(step_url(draft, 2, slug))
    assert response["Location"] == step_url(draft, 3, slug)


def options(client, draft, data, slug="acme"):
    """Post step 3; the response (302 to step 4 when it passed, 200 with errors if not)."""
    return client.post(step_url(draft, 3, slug), data)


def link_path(html: str) -> str:
    """The download link's path as step 4 shows it."""
    match = re.search(r'data-testid="link-url">https?://[^/]+(/download/[^<"]+/)<', html)
    assert match, "step 4 shows no download link"
    return match.group(1)


def errors(response) -> str:
    return " ".join(
        re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    )
