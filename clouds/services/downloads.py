"""Download links: the unguessable, expiring, revocable URLs that hand out agent packages.

A link reads ``acdl_<prefix>.<secret>`` inside ``/download/<text>/``; only the secret's hash
is stored. Each link owns one enrollment token whose secret is *derived* from the link's
secret (HMAC), so the portal can build the package on demand, when it is first downloaded,
without keeping the token in clear anywhere: whoever holds the URL can rebuild the token, and
nobody else can. Packages are cached per link under ``ACURA_PACKAGE_CACHE_DIR`` and deleted
when the link is revoked or expires.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from protection.models import Platform

from ..crypto import seal, unseal
from ..models import Cloud, DownloadEvent, DownloadLink, DriverType, LinuxDistro
from ..network import network_clean
from ..packages import (
    PackageBuildError,
    PackageSpec,
    build_package,
    package_content_type,
    package_filename,
)
from ..tokens import token_matches, token_new, token_parse
from .enrollment import ENROLLMENT_KIND, MAX_USES, enrollment_token_create, revoke_issued

LINK_KIND = "acdl"
MAX_LINK_HOURS = 24 * 90
# What the agent is, in its config ("Do not update role and cloud_type fields").
ROLES = {"linux": "host", "windows": "host", "vmware": "appliance", "ovirt": "appliance"}


class DownloadRefused(Exception):
    """The link serves nothing (unknown, expired, revoked, or its customer is inactive)."""

    def __init__(self, message: str, status: int = 404):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class NewDownloadLink:
    link: DownloadLink
    text: str  # shown to whoever made it; the URL path is /download/<text>/

    @property
    def path(self) -> str:
        return f"/download/{self.text}/"

    @property
    def url(self) -> str:
        return self.link.server_url.rstrip("/") + self.path


@dataclass(frozen=True)
class ServedPackage:
    path: Path
    filename: str
    content_type: str
    size: int


def _derived_token_secret(link_secret: str) -> str:
    digest = hmac.new(link_secret.encode(), b"acura enrollment token", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _clean_choice(value, choices, field: str, label: str, errors: dict) -> str:
    value = (value or "").strip()
    if value not in choices.values:
        errors[field] = f"Choose the {label}: {', '.join(choices.values)}."
    return value


def _validate(customer, platform, group, cloud, distro, driver, network, hours, agents) -> dict:
    errors: dict = {}
    if platform not in Platform.values:
        raise ValidationError(
            {"platform": f"Unknown platform {platform!r}; one of {', '.join(Platform.values)}."}
        )
    if platform == Platform.LINUX:
        distro = _clean_choice(distro, LinuxDistro, "distro", "target distribution", errors)
        driver = _clean_choice(driver, DriverType, "driver", "driver deployment type", errors)
    elif distro or driver:
        errors["distro"] = "Distribution and driver type are Linux agent options."
    if platform in ("vmware", "ovirt"):
        if cloud is None:
            errors["cloud"] = f"A {Platform(platform).label} agent needs a registered cloud."
        elif cloud.customer_id != customer.pk:
            errors["cloud"] = "No such cloud."
        elif cloud.platform != platform:
            errors["cloud"] = f"Cloud {cloud.name} is a {cloud.get_platform_display()} platform."
    elif cloud is not None:
        errors["cloud"] = "Only VMware vSphere and oVirt agents belong to a cloud."
    if group is not None and group.customer_id != customer.pk:
        errors["group"] = "No such group."
    clean_network = {}
    if platform == "vmware":
        try:
            clean_network = network_clean(network)
        except ValidationError as exc:
            errors.update({f"network_{k}": v for k, v in exc.message_dict.items()})
    elif network:
        errors["network"] = "Network settings are for the VMware appliance only."
    for value, field, top in (
        (hours, "expires_hours", MAX_LINK_HOURS),
        (agents, "max_agents", MAX_USES),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            errors[field] = f"A whole number from 1 to {top}."
    if errors:
        raise ValidationError(errors)
    return {"distro": distro or "", "driver": driver or "", "network": clean_network}


def download_link_create(
    customer,
    *,
    platform: str,
    server_url: str,
    group=None,
    cloud: Cloud | None = None,
    distro: str = "",
    driver: str = "",
    network: dict | None = None,
    expires_hours: int | None = None,
    max_agents: int | None = None,
    created_by=None,
) -> NewDownloadLink:
    """A new link (and its enrollment token) for one package; the URL is in the answer only."""
    hours = settings.DOWNLOAD_LINK_HOURS if expires_hours is None else expires_hours
    agents = settings.DOWNLOAD_LINK_AGENTS if max_agents is None else max_agents
    clean = _validate(customer, platform, group, cloud, distro, driver, network, hours, agents)
    server_url = (server_url or "").strip().rstrip("/")
    if not server_url.startswith(("http://", "https://")):
        raise ValidationError({"server_url": "The portal URL must start with http:// or https://."})
    link_token = token_new(LINK_KIND)
    link_secret = token_parse(LINK_KIND, link_token.text).secret
    with transaction.atomic():
        enrollment = enrollment_token_create(
            customer,
            platform=platform,
            group=group,
            cloud=cloud,
            expires_hours=hours,
            max_uses=agents,
            created_by=created_by,
            secret=_derived_token_secret(link_secret),
        ).token
        link = DownloadLink.objects.create(
            customer=customer,
            server_url=server_url,
            enrollment_token=enrollment,
            prefix=link_token.prefix,
            secret_hash=link_token.secret_hash,
            text_sealed=seal(link_token.text),
            expires_at=enrollment.expires_at,
            created_by=created_by,
            **clean,
        )
    return NewDownloadLink(link, link_token.text)


def download_link_url(link: DownloadLink) -> str:
    """The link's full URL, for the customer who may see it again (wizard, links page)."""
    return f"{link.server_url.rstrip('/')}/download/{unseal(link.text_sealed)}/"


def download_link_revoke(link: DownloadLink) -> bool:
    """Stop the link and the enrollment token of its package; False if already revoked."""
    with transaction.atomic():
        updated = revoke_issued(link)
        revoke_issued(link.enrollment_token)
    package_cache_drop(link.prefix)
    return updated


def _resolve(text: str) -> tuple[DownloadLink | None, str, str | None]:
    """(link, secret, refusal): the link the text names when its secret matches."""
    parsed = token_parse(LINK_KIND, text)
    if parsed is None:
        return None, "", "No such download link."
    link = (
        DownloadLink.objects.all_customers()
        .select_related("customer", "enrollment_token__cloud", "enrollment_token__group")
        .filter(prefix=parsed.prefix)
        .first()
    )
    if link is None or not token_matches(link.secret_hash, parsed.secret):
        return None, "", "No such download link."
    if not link.customer.is_active:
        return link, parsed.secret, "No such download link."
    return link, parsed.secret, link.refusal()


def server_fingerprint() -> str | None:
    """SHA-256 of the portal's TLS certificate (``ACURA_TLS_CERT_FILE``), for agents to pin."""
    if not settings.TLS_CERT_FILE:
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    pem = Path(settings.TLS_CERT_FILE).read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    return certificate.fingerprint(hashes.SHA256()).hex()


def package_config(link: DownloadLink, link_secret: str) -> dict:
    """The package config the agent reads before it enrolls (agent/PROTOCOL.md)."""
    token = f"{ENROLLMENT_KIND}_{link.enrollment_token.prefix}.{_derived_token_secret(link_secret)}"
    config = {
        "server": link.server_url,
        "server_fingerprint": server_fingerprint(),
        "enrollment_token": token,
        "customer": {"id": link.customer_id, "slug": link.customer.slug},
        "cloud_id": link.cloud_id,
        "platform": link.platform,
        "role": ROLES[link.platform],
    }
    if link.group_id:
        config["group"] = link.group.name
    if link.cloud_id:
        cloud = link.cloud
        config["cloud"] = {"name": cloud.name, "type": cloud.platform, "endpoint": cloud.endpoint}
    if link.platform == "vmware":
        config["network"] = link.network or {"mode": "dhcp"}
    return config


def package_spec(link: DownloadLink) -> PackageSpec:
    return PackageSpec(
        platform=link.platform,
        distro=link.distro or None,
        driver=link.driver or None,
        network=link.network or None,
    )


def _cache_dir(prefix: str) -> Path:
    return Path(settings.PACKAGE_CACHE_DIR) / prefix


def package_cache_drop(prefix: str) -> None:
    shutil.rmtree(_cache_dir(prefix), ignore_errors=True)


def _cached_package(link: DownloadLink, secret: str) -> Path:
    """The link's package, built on first download and reused until the link ends."""
    spec = package_spec(link)
    config = package_config(link, secret)
    host = settings.WINDOWS_SERVICE_HOST
    inputs = json.dumps([config, spec.__dict__, host], sort_keys=True, default=str)
    key = hashlib.sha256(inputs.encode()).hexdigest()[:16]
    folder = _cache_dir(link.prefix) / key
    path = folder / package_filename(spec)
    if path.exists():
        return path
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        build_package(spec, config, work, windows_service_host=Path(host) if host else None)
        os.chmod(work, 0o700)
        try:
            os.rename(work, folder)  # atomic: a concurrent build of the same key just loses
        except OSError:
            if not path.exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def download_link_peek(text: str) -> tuple[str, str]:
    """(file name, content type) of a live link's package, for a HEAD request: nothing is
    built, counted or logged. ``DownloadRefused`` like a download would be."""
    link, _secret, refusal = _resolve(text)
    if refusal is not None:
        raise DownloadRefused(
            refusal, status=410 if link is not None and link.customer.is_active else 404
        )
    spec = package_spec(link)
    return package_filename(spec), package_content_type(spec)


def download_link_serve(
    text: str, *, remote_addr: str | None = None, user_agent: str = ""
) -> ServedPackage:
    """The package for ``text``, counted and logged; ``DownloadRefused`` (also logged when
    the link exists) otherwise."""
    link, secret, refusal = _resolve(text)
    if refusal is not None:
        if link is not None:
            _log(link, served=False, detail=refusal, remote_addr=remote_addr, user_agent=user_agent)
        raise DownloadRefused(
            refusal, status=410 if link is not None and link.customer.is_active else 404
        )
    try:
        path = _cached_package(link, secret)
    except PackageBuildError as exc:
        _log(
            link,
            served=False,
            detail=f"build failed: {exc}",
            remote_addr=remote_addr,
            user_agent=user_agent,
        )
        raise DownloadRefused(
            "The agent package could not be built; the error is logged.", status=500
        ) from exc
    size = path.stat().st_size
    now = timezone.now()
    DownloadLink.objects.for_customer(link.customer_id).filter(pk=link.pk).update(
        downloads=F("downloads") + 1, last_downloaded_at=now
    )
    _log(link, served=True, detail="", remote_addr=remote_addr, user_agent=user_agent, size=size)
    spec = package_spec(link)
    return ServedPackage(path, package_filename(spec), package_content_type(spec), size)


def _log(link, *, served: bool, detail: str, remote_addr, user_agent: str, size: int = 0) -> None:
    DownloadEvent.objects.create(
        customer_id=link.customer_id,
        link=link,
        served=served,
        detail=detail[:255],
        remote_addr=remote_addr or None,
        user_agent=(user_agent or "")[:255],
        size=size,
    )


def download_links_cleanup(now=None) -> int:
    """Drop the cached packages of links that ended (expired or revoked); returns how many."""
    now = now or timezone.now()
    root = Path(settings.PACKAGE_CACHE_DIR)
    if not root.is_dir():
        return 0
    live = set(
        DownloadLink.objects.all_customers()
        .filter(revoked_at__isnull=True, expires_at__gt=now)
        .values_list("prefix", flat=True)
    )
    dropped = 0
    for entry in root.iterdir():
        if entry.name.startswith(".") or entry.name in live:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        dropped += 1
    return dropped
