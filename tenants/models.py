"""Customers (tenants) and the memberships that give users a role in them."""

from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use 1-50 lowercase letters, digits and hyphens, not starting or ending with a hyphen.",
)


def validate_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (e.g. Europe/Berlin).")


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(available_timezones())]


class CustomerManager(models.Manager):
    def get_by_natural_key(self, slug):
        return self.get(slug=slug)


class Customer(models.Model):
    """A tenant: a company whose machines we replicate. Everything it owns points here."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True, validators=[slug_validator])
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="Replication windows and retention periods are computed in this zone.",
    )
    is_active = models.BooleanField(
        default=True, help_text="Inactive customers cannot log in to the dashboard."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CustomerManager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def natural_key(self):
        return (self.slug,)


class Role(models.TextChoices):
    """Roles in ascending power: each includes everything the previous one may do."""

    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"

    @classmethod
    def rank(cls, role: str) -> int:
        return [cls.VIEWER, cls.OPERATOR, cls.ADMIN].index(role)


ROLE_HELP = {
    Role.VIEWER: "Sees everything, changes nothing.",
    Role.OPERATOR: "Also acts on machines: protection, groups, moves.",
    Role.ADMIN: "Also manages replication settings, users and platforms.",
}


class Membership(models.Model):
    """A user's role in one customer. A user may belong to several customers."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "customer"], name="membership_unique_user")
        ]
        ordering = ["customer__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.customer.slug} ({self.role})"

    def has_role(self, role: str) -> bool:
        return Role.rank(self.role) >= Role.rank(role)
