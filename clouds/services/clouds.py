"""Registered platforms: create, change, check and delete clouds.

A cloud is saved only after its connection check passed (the wizard's "checks the
correctness of the entered data"), and again whenever what the check depends on changes
(endpoint, login, password, certificate, discovery scope). The password is sealed at rest
(``clouds.crypto``) and never leaves the server except to the cloud's own agents.
"""

from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..connectors import ConnectorError, ovirt, vmware
from ..crypto import seal, unseal
from ..models import CLOUD_PLATFORMS, Cloud, DiscoveryLevel, PowerAction

NAME_MAX = 100
TEXT_MAX = 255
INVENTORY_NAMES_MAX = 200  # scope names kept on the cloud row (the rest is counted)

VMWARE_OPTIONS = {
    "enforce_quiesce": False,
    "cluster_level_discover": False,
    "on_replication_start": PowerAction.NONE,
    "on_replication_finish": PowerAction.NONE,
    "disk_storage_threshold_percent": 0,
    "free_space_threshold_percent": 0,
}
OVIRT_OPTIONS = {"discovery_level": DiscoveryLevel.CLUSTER}
# What the connection check depends on: changing any of these needs a new check.
CHECKED_FIELDS = (
    "endpoint",
    "login",
    "tls_fingerprint",
    "cluster_level_discover",
    "discovery_level",
)


class CloudCheckFailed(Exception):
    """The platform refused or could not be reached; nothing was saved.

    ``error`` is the connector's ``ConnectorError``: its ``kind`` says what went wrong and,
    for an untrusted certificate, ``fingerprint`` is what the customer may choose to trust.
    """

    def __init__(self, error: ConnectorError):
        super().__init__(error.message)
        self.error = error
        self.message = error.message
        self.kind = error.kind
        self.fingerprint = getattr(error, "fingerprint", None)


@dataclass(frozen=True)
class CloudCheck:
    ok: bool
    message: str
    product: str = ""
    warnings: list[str] = field(default_factory=list)


def _options_for(platform: str) -> dict:
    return VMWARE_OPTIONS if platform == "vmware" else OVIRT_OPTIONS


def _clean_options(platform: str, options: dict, errors: dict) -> dict:
    clean = {}
    for name, default in _options_for(platform).items():
        value = options.get(name, default)
        if isinstance(default, bool):
            clean[name] = bool(value)
        elif name.endswith("_percent"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                errors[name] = "A percentage from 0 to 100 (0 – unlimited)."
            clean[name] = value
        else:
            choices = PowerAction if name.startswith("on_") else DiscoveryLevel
            if value not in choices.values:
                errors[name] = f"Choose one of: {', '.join(choices.labels)}."
            clean[name] = value
    unknown = set(options) - set(_options_for(platform))
    if unknown:
        errors["__all__"] = f"Not a {platform} setting: {', '.join(sorted(unknown))}."
    return clean


def _clean_text(value, name: str, label: str, errors: dict, *, required=True) -> str:
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        errors[name] = f"{label} must be text."
        return ""
    if required and not text:
        errors[name] = f"{label} is required."
    elif len(text) > (NAME_MAX if name == "name" else TEXT_MAX):
        errors[name] = f"{label} is too long."
    return text


def _check(platform: str, endpoint: str, login: str, password: str, fingerprint: str, options):
    """Run the platform's connector; ``CloudCheckFailed`` when it refuses."""
    timeout = settings.CLOUD_CHECK_TIMEOUT_SECONDS
    try:
        if platform == "vmware":
            return vmware.check(
                endpoint,
                login,
                password,
                cluster_level=options["cluster_level_discover"],
                tls_fingerprint=fingerprint or None,
                timeout=timeout,
            )
        return ovirt.check(
            endpoint,
            login,
            password,
            level=options["discovery_level"],
            tls_fingerprint=fingerprint or None,
            timeout=timeout,
        )
    except ConnectorError as exc:
        raise CloudCheckFailed(exc) from exc


def _inventory_summary(result) -> dict:
    inventory = result.inventory
    summary = dict(inventory.counts)
    scopes = [asdict(scope) for scope in inventory.scopes]
    summary["scopes"] = scopes[:INVENTORY_NAMES_MAX]
    summary["scopes_total"] = len(scopes)
    return summary


def _record_success(cloud: Cloud, result) -> None:
    cloud.checked_at = timezone.now()
    cloud.check_ok = True
    cloud.product = (result.product or "")[:TEXT_MAX]
    warnings = list(result.warnings or [])
    cloud.check_message = "Connected." + (" " + " ".join(warnings) if warnings else "")
    cloud.inventory = _inventory_summary(result)


def _save(cloud: Cloud) -> Cloud:
    duplicate = Cloud.objects.for_customer(cloud.customer_id).filter(name__iexact=cloud.name)
    if cloud.pk:
        duplicate = duplicate.exclude(pk=cloud.pk)
    message = f"A cloud named “{cloud.name}” already exists. The name must be unique."
    if duplicate.exists():
        raise ValidationError({"name": message})
    try:
        with transaction.atomic():
            cloud.save()
    except IntegrityError as exc:
        raise ValidationError({"name": message}) from exc
    return cloud


def cloud_create(
    customer,
    *,
    platform: str,
    name: str,
    endpoint: str,
    login: str,
    password: str,
    tls_fingerprint: str = "",
    options: dict | None = None,
    check: bool = True,
) -> Cloud:
    """Register a VMware vSphere or oVirt cloud after its connection check passed.

    ``ValidationError`` for bad fields, ``CloudCheckFailed`` when the platform refuses;
    either way nothing is saved. ``check=False`` is for fixtures and the admin only.
    """
    errors: dict = {}
    if platform not in CLOUD_PLATFORMS:
        raise ValidationError({"platform": "Clouds are VMware vSphere or oVirt platforms."})
    cloud = Cloud(customer=customer, platform=platform)
    cloud.name = _clean_text(name, "name", "Cloud name", errors)
    cloud.endpoint = _clean_text(endpoint, "endpoint", "Endpoint", errors)
    cloud.login = _clean_text(login, "login", "Login", errors)
    if not isinstance(password, str) or not password:
        errors["password"] = "Password is required."
    cloud.tls_fingerprint = _clean_text(
        tls_fingerprint, "tls_fingerprint", "Fingerprint", errors, required=False
    )
    for key, value in _clean_options(platform, options or {}, errors).items():
        setattr(cloud, key, value)
    if errors:
        raise ValidationError(errors)
    if Cloud.objects.for_customer(customer).filter(name__iexact=cloud.name).exists():
        raise ValidationError(
            {"name": f"A cloud named “{cloud.name}” already exists. The name must be unique."}
        )
    if check:
        result = _check(
            platform,
            cloud.endpoint,
            cloud.login,
            password,
            cloud.tls_fingerprint,
            _options_of(cloud),
        )
        _record_success(cloud, result)
    cloud.password_sealed = seal(password)
    return _save(cloud)


def _options_of(cloud: Cloud) -> dict:
    return {name: getattr(cloud, name) for name in {**VMWARE_OPTIONS, **OVIRT_OPTIONS}}


def cloud_update(
    cloud: Cloud,
    *,
    name: str,
    endpoint: str,
    login: str,
    password: str | None = None,
    tls_fingerprint: str | None = None,
    options: dict | None = None,
) -> Cloud:
    """Change a cloud. An empty ``password`` keeps the stored one. When anything the
    connection depends on changes, the check runs first and a refusal saves nothing."""
    errors: dict = {}
    before = {name: getattr(cloud, name) for name in CHECKED_FIELDS}
    cloud.name = _clean_text(name, "name", "Cloud name", errors)
    cloud.endpoint = _clean_text(endpoint, "endpoint", "Endpoint", errors)
    cloud.login = _clean_text(login, "login", "Login", errors)
    if tls_fingerprint is not None:
        cloud.tls_fingerprint = _clean_text(
            tls_fingerprint, "tls_fingerprint", "Fingerprint", errors, required=False
        )
    for key, value in _clean_options(cloud.platform, options or {}, errors).items():
        setattr(cloud, key, value)
    if password is not None and not isinstance(password, str):
        errors["password"] = "Password must be text."
    if errors:
        cloud.refresh_from_db()
        raise ValidationError(errors)
    changed = any(getattr(cloud, name) != before[name] for name in CHECKED_FIELDS)
    if password or changed:
        secret = password or cloud_password(cloud)
        try:
            result = _check(
                cloud.platform,
                cloud.endpoint,
                cloud.login,
                secret,
                cloud.tls_fingerprint,
                _options_of(cloud),
            )
        except CloudCheckFailed:
            cloud.refresh_from_db()
            raise
        _record_success(cloud, result)
        if password:
            cloud.password_sealed = seal(password)
    try:
        return _save(cloud)
    except ValidationError:
        cloud.refresh_from_db()
        raise


def cloud_password(cloud: Cloud) -> str:
    """The cloud's password in clear, for its connection check and its agents only."""
    return unseal(cloud.password_sealed)


def cloud_discover(cloud: Cloud):
    """Check the stored connection now, record the outcome on the cloud and return the
    connector's ``CheckResult`` (with the inventory); ``CloudCheckFailed`` (recorded too)
    when the platform refuses."""
    try:
        result = _check(
            cloud.platform,
            cloud.endpoint,
            cloud.login,
            cloud_password(cloud),
            cloud.tls_fingerprint,
            _options_of(cloud),
        )
    except CloudCheckFailed as exc:
        Cloud.objects.for_customer(cloud.customer_id).filter(pk=cloud.pk).update(
            checked_at=timezone.now(), check_ok=False, check_message=exc.message[:2000]
        )
        cloud.refresh_from_db()
        raise
    _record_success(cloud, result)
    cloud.save(
        update_fields=[
            "checked_at",
            "check_ok",
            "check_message",
            "product",
            "inventory",
            "updated_at",
        ]
    )
    return result


def cloud_test(cloud: Cloud) -> CloudCheck:
    """Check the stored connection now and record the outcome on the cloud."""
    try:
        result = cloud_discover(cloud)
    except CloudCheckFailed as exc:
        return CloudCheck(ok=False, message=exc.message)
    return CloudCheck(
        ok=True,
        message=cloud.check_message,
        product=cloud.product,
        warnings=list(result.warnings or []),
    )


def cloud_delete(cloud: Cloud) -> None:
    """Delete a cloud its agents no longer use; refused (nothing changes) while they do."""
    in_use = cloud.agents.count()
    if in_use:
        raise ValidationError(
            f"{cloud.name} is used by {in_use} agent{'s' if in_use != 1 else ''}. "
            "Delete those agents first."
        )
    cloud.delete()  # its enrollment tokens, and the download links built on them, go along
