"""Forms of the tenants app."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from ..models import ROLE_HELP, Role
from ..selectors import user_by_login
from ..services import NewUser
from .base import TenantForm


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


def role_choices() -> list[tuple[str, str]]:
    """Each role with what it allows, so the admin picks knowingly."""
    return [(role.value, f"{role.label} — {ROLE_HELP[role]}") for role in Role]


class MembershipAddForm(TenantForm):
    """Add an existing login by username or email, or create a new one, with a role."""

    EXISTING, NEW = "existing", "new"

    mode = forms.ChoiceField(
        label="Who",
        choices=[(EXISTING, "An existing user"), (NEW, "A new user")],
        initial=EXISTING,
        widget=forms.RadioSelect,
    )
    login = forms.CharField(
        label="Username or email", required=False, max_length=254, help_text="Of the existing user."
    )
    username = forms.CharField(label="Username", required=False, max_length=150)
    email = forms.EmailField(label="Email", required=False)
    first_name = forms.CharField(label="First name", required=False, max_length=150)
    last_name = forms.CharField(label="Last name", required=False, max_length=150)
    password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to generate a strong temporary password, shown once.",
    )
    role = forms.ChoiceField(choices=role_choices, initial=Role.VIEWER, widget=forms.RadioSelect)

    def clean(self):
        data = super().clean()
        if data.get("mode") == self.EXISTING and not data.get("login") and data.get("username"):
            # Filled in the new-user fields but left the radio alone: the intent is clear.
            data["mode"] = self.NEW
        if data.get("mode") == self.EXISTING:
            login = data.get("login", "")
            if not login:
                self.add_error("login", "Give the username or email of the user to add.")
            else:
                data["user"] = user_by_login(login)
                if data["user"] is None:
                    self.add_error("login", f"No user has the username or email “{login}”.")
        elif data.get("mode") == self.NEW and not data.get("username"):
            self.add_error("username", "Give the new user a username.")
        return data

    def new_user(self) -> NewUser | None:
        data = self.cleaned_data
        if data["mode"] != self.NEW:
            return None
        return NewUser(
            username=data["username"],
            email=data["email"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            password=data["password"],
        )


class MembershipRoleForm(TenantForm):
    role = forms.ChoiceField(choices=role_choices, widget=forms.RadioSelect)


def add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Attach a service's ``ValidationError`` to the form: to the field it names when the
    form has that field, to the whole form otherwise."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        form.add_error(field if field in form.fields else None, errors)
