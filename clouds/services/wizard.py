"""The Register new platform wizard's state, kept server-side in ``WizardDraft`` rows.

Each run is its own row (its id is in the URL), so two tabs never collide, refresh and Back
re-render from the row, and an unfinished run can be resumed or discarded later. Moving on
is allowed only from the step the run has reached; going back is always allowed and keeps
what was chosen. Step 3 does the real work: it creates the group and the cloud when asked
to (the cloud only after its connection check passed) and makes the download link step 4
shows. Choosing different options later makes a new link and revokes the old one, so a run
never leaves two live packages behind.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from protection.models import MachineGroup, Platform
from protection.services.machines import group_create

from ..models import Cloud, DriverType, LinuxDistro, WizardDraft
from ..network import network_clean
from .clouds import cloud_create
from .downloads import download_link_create, download_link_revoke

LAST_STEP = 4
DRAFTS_KEPT = 20  # unfinished runs per user; older ones are dropped when a new run starts


def drafts_open(customer, user):
    """The user's unfinished runs, most recently touched first."""
    return (
        WizardDraft.objects.for_customer(customer)
        .filter(user=user, finished_at__isnull=True)
        .select_related("group", "cloud")
    )


def draft_start(customer, user, *, platform: str = "", group: MachineGroup | None = None):
    """A new run; ``group`` (from a group's page) is pre-selected in step 3."""
    if group is not None and group.customer_id != customer.pk:
        raise ValidationError({"group": "No such group."})
    draft = WizardDraft.objects.create(customer=customer, user=user, group=group)
    stale = list(drafts_open(customer, user).values_list("pk", flat=True)[DRAFTS_KEPT:])
    if stale:
        WizardDraft.objects.for_customer(customer).filter(pk__in=stale).delete()
    if platform:
        draft_set_platform(draft, platform)
    return draft


def draft_set_platform(draft: WizardDraft, platform: str) -> WizardDraft:
    """Step 1. A different platform than before forgets the platform's step-3 choices."""
    if platform not in Platform.values:
        raise ValidationError({"platform": "Select the type of the replicated platform."})
    if platform != draft.platform:
        if draft.link_id:
            download_link_revoke(draft.link)
        draft.platform = platform
        draft.data = {}
        draft.cloud = None
        draft.link = None
        draft.step = 2
    else:
        draft.step = max(draft.step, 2)
    draft.save()
    return draft


def draft_accept_requirements(draft: WizardDraft) -> WizardDraft:
    """Step 2: the customer reviewed the platform's requirements."""
    if not draft.platform:
        raise ValidationError("Select the platform first.")
    draft.step = max(draft.step, 3)
    draft.save(update_fields=["step", "updated_at"])
    return draft


def _link_options(draft: WizardDraft) -> dict:
    data = draft.data
    return {
        "platform": draft.platform,
        "group": draft.group_id,
        "cloud": draft.cloud_id,
        "distro": data.get("distro", ""),
        "driver": data.get("driver", ""),
        "network": data.get("network") or {},
    }


def draft_set_options(
    draft: WizardDraft,
    *,
    server_url: str,
    group: MachineGroup | None = None,
    new_group: str = "",
    cloud: Cloud | None = None,
    new_cloud: dict | None = None,
    distro: str = "",
    driver: str = "",
    network: dict | None = None,
    user=None,
) -> WizardDraft:
    """Step 3: the group, the cloud (registered, or new and checked) and the platform's
    options; then the download link. Everything is validated before the new cloud's check
    (which talks to the platform, so it runs outside the transaction); a ``ValidationError``
    or ``CloudCheckFailed`` then leaves the run and the customer's data as they were. Only a
    race after a passed check (a group of the same name created meanwhile) can leave the new
    cloud registered without the rest; it is a valid, checked cloud either way."""
    platform = draft.platform
    customer = draft.customer
    if draft.step < 3:
        raise ValidationError("Review the requirements (step 2) first.")
    if group is not None and group.customer_id != customer.pk:
        raise ValidationError({"group": "No such group."})
    new_group = (new_group or "").strip()
    if group is None and not new_group:
        raise ValidationError({"group": "Choose a group or give the name of a new one."})
    if (
        new_group
        and MachineGroup.objects.for_customer(customer).filter(name__iexact=new_group).exists()
    ):
        raise ValidationError({"new_group": f"A group named “{new_group}” already exists."})
    needs_cloud = platform in ("vmware", "ovirt")
    if needs_cloud and cloud is None and not new_cloud:
        raise ValidationError({"cloud": "Choose a registered cloud, or register a new one."})
    if cloud is not None and (cloud.customer_id != customer.pk or cloud.platform != platform):
        raise ValidationError({"cloud": "Choose one of your registered clouds of this platform."})
    data = {}
    if platform == "linux":
        if distro not in LinuxDistro.values:
            raise ValidationError({"distro": "Select the target distribution."})
        if driver not in DriverType.values:
            raise ValidationError({"driver": "Select the driver deployment type."})
        data.update(distro=distro, driver=driver)
    if platform == "vmware":
        data["network"] = network_clean(network)
    if new_cloud is not None:
        # The check talks to the platform: done before anything is written, outside a
        # transaction; a refusal raises and nothing below happens.
        cloud = cloud_create(customer, platform=platform, **new_cloud)
    with transaction.atomic():
        if new_group:
            group = group_create(customer, name=new_group)
        before = _link_options(draft) if draft.link_id else None
        draft.group, draft.cloud = group, (cloud if needs_cloud else None)
        draft.data = data
        if before != _link_options(draft):
            old = draft.link if draft.link_id else None
            new = download_link_create(
                customer,
                platform=platform,
                server_url=server_url,
                group=group,
                cloud=draft.cloud,
                distro=data.get("distro", ""),
                driver=data.get("driver", ""),
                network=data.get("network"),
                created_by=user,
            )
            draft.link = new.link
            if old is not None:
                download_link_revoke(old)
        draft.step = LAST_STEP
        draft.save()
    return draft


def draft_finish(draft: WizardDraft) -> WizardDraft:
    """Step 4's Finish: the run leaves the list of unfinished ones (its link stays live)."""
    if draft.step < LAST_STEP or draft.link_id is None:
        raise ValidationError("Finish the agent options (step 3) first.")
    draft.finished_at = timezone.now()
    draft.save(update_fields=["finished_at", "updated_at"])
    return draft


def draft_discard(draft: WizardDraft) -> None:
    """Forget an unfinished run. A cloud or group it registered stays (they are real now);
    a download link it made and nobody downloaded is revoked."""
    if draft.link_id and draft.link.downloads == 0:
        download_link_revoke(draft.link)
    draft.delete()


def draft_renew_link(draft: WizardDraft, *, server_url: str, user=None) -> WizardDraft:
    """Step 4 after the link expired (or was revoked): a new link with the same options."""
    if draft.step < LAST_STEP or draft.link_id is None:
        raise ValidationError("Finish the agent options (step 3) first.")
    old = draft.link
    options = _link_options(draft)
    with transaction.atomic():
        new = download_link_create(
            draft.customer,
            platform=options["platform"],
            server_url=server_url,
            group=draft.group,
            cloud=draft.cloud,
            distro=options["distro"],
            driver=options["driver"],
            network=options["network"] or None,
            created_by=user,
        )
        draft.link = new.link
        draft.save(update_fields=["link", "updated_at"])
    download_link_revoke(old)
    return draft
