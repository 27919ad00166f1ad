"""Forms of the tenants app."""

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError


class PortalAuthenticationForm(AuthenticationForm):
    """Login that also refuses users whose every customer is inactive (provider staff
    without memberships may still log in to reach the admin)."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        memberships = user.memberships.all()
        if (
            not user.is_staff
            and memberships.exists()
            and not memberships.filter(customer__is_active=True).exists()
        ):
            raise ValidationError(
                "Your customer account is inactive. Contact your provider.", code="inactive"
            )
