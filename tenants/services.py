"""Writes of the tenants app: customers, users and their memberships.

Every service validates first and raises ``ValidationError`` with a message meant for the
person who typed the input (the users page, the admin, ``create_customer``); each runs in
one transaction, so a refused call changes nothing. Error dicts use the field names of
the user model (``username``, ``email``, ``password``…) so forms can attach them.
"""

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction

from .models import Customer, Membership, Role, slug_validator, validate_time_zone

User = get_user_model()


@dataclass(frozen=True)
class NewUser:
    """What the users page (or the command) knows about a login that does not exist yet.

    An empty ``password`` asks for a generated one.
    """

    username: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    password: str = ""


@dataclass(frozen=True)
class MembershipAdded:
    membership: Membership
    user_created: bool
    # Only set when the service generated the password: the caller shows it once and
    # nothing stores it in clear text anywhere.
    generated_password: str | None = None


@dataclass(frozen=True)
class CustomerCreated:
    customer: Customer
    membership: Membership | None = None
    user_created: bool = False
    generated_password: str | None = None


def generate_password() -> str:
    """A strong temporary password (about 96 bits) that is still easy to copy."""
    return secrets.token_urlsafe(16)


def _check_role(role: str) -> Role:
    if role not in Role.values:
        choices = ", ".join(Role.values)
        raise ValidationError({"role": f"“{role}” is not a role; choose one of {choices}."})
    return Role(role)


def _build_user(new: NewUser) -> tuple[User, str | None]:
    """An unsaved, fully validated user, and the generated password if there is one."""
    username = (new.username or "").strip()
    email = (new.email or "").strip()
    if not username:
        raise ValidationError({"username": "Give the new user a username."})
    errors: dict[str, list[str]] = {}
    if User.objects.filter(username__iexact=username).exists():
        errors["username"] = [
            f"A user named “{username}” already exists: add them as an existing user."
        ]
    if email and User.objects.filter(email__iexact=email).exists():
        errors["email"] = [
            f"A user with the email {email} already exists: add them as an existing user."
        ]
    if errors:
        raise ValidationError(errors)
    user = User(
        username=username,
        email=email,
        first_name=(new.first_name or "").strip(),
        last_name=(new.last_name or "").strip(),
    )
    generated = None
    if new.password:
        try:
            validate_password(new.password, user=user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
        user.set_password(new.password)
    else:
        generated = generate_password()
        user.set_password(generated)
    user.full_clean(exclude=["password", "last_login", "date_joined"])
    return user, generated


def _admins(customer: Customer):
    """The customer's admin memberships, locked until the transaction ends so two
    concurrent demotions cannot both pass the last-admin check."""
    return Membership.objects.select_for_update().filter(customer=customer, role=Role.ADMIN)


def _check_membership(customer: Customer, membership: Membership) -> None:
    if membership.customer_id != customer.pk:
        # Same words as for an unknown id: nobody learns other customers' memberships.
        raise ValidationError("This membership does not exist.")


def membership_add(
    customer: Customer, *, role: str, user=None, new_user: NewUser | None = None
) -> MembershipAdded:
    """Give ``user`` (an existing login) or ``new_user`` (created here) a role in ``customer``.

    Exactly one of the two is given. A new user without a password gets a generated one,
    returned once in ``generated_password``.
    """
    if (user is None) == (new_user is None):
        raise ValueError("membership_add() needs exactly one of user= and new_user=")
    role = _check_role(role)
    with transaction.atomic():
        generated = None
        if user is None:
            user, generated = _build_user(new_user)
            user.save()
        elif Membership.objects.filter(customer=customer, user=user).exists():
            raise ValidationError(
                {NON_FIELD_ERRORS: f"{user.get_username()} is already a member of {customer}."}
            )
        try:
            with transaction.atomic():
                membership = Membership.objects.create(customer=customer, user=user, role=role)
        except IntegrityError as exc:  # a concurrent add of the same user
            raise ValidationError(
                {NON_FIELD_ERRORS: f"{user.get_username()} is already a member of {customer}."}
            ) from exc
    return MembershipAdded(
        membership, user_created=new_user is not None, generated_password=generated
    )


def membership_change_role(customer: Customer, membership: Membership, role: str) -> Membership:
    """Set a member's role; the customer's last admin cannot be demoted (nobody could
    manage its users and settings afterwards)."""
    _check_membership(customer, membership)
    role = _check_role(role)
    with transaction.atomic():
        admins = list(_admins(customer).values_list("pk", flat=True))
        if role != Role.ADMIN and admins == [membership.pk]:
            raise ValidationError(
                {
                    "role": f"{membership.user.get_username()} is the last admin of {customer}: "
                    "make another member admin first."
                }
            )
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def membership_remove(customer: Customer, membership: Membership) -> None:
    """Take a user out of a customer. The user itself stays (it may belong to other
    customers, and its actions stay attributable); the last admin cannot be removed."""
    _check_membership(customer, membership)
    with transaction.atomic():
        admins = list(_admins(customer).values_list("pk", flat=True))
        if admins == [membership.pk]:
            raise ValidationError(
                f"{membership.user.get_username()} is the last admin of {customer} and cannot "
                "be removed: make another member admin first."
            )
        membership.delete()


def customer_set_active(customers, *, active: bool) -> int:
    """Activate or deactivate customers (inactive ones cannot log in). Returns how many
    changed."""
    with transaction.atomic():
        return (
            Customer.objects.filter(pk__in=[c.pk for c in customers])
            .exclude(is_active=active)
            .update(is_active=active)
        )


def customer_create(
    slug: str,
    name: str,
    time_zone: str = "UTC",
    admin_username: str | None = None,
    password: str | None = None,
    role: str = Role.ADMIN,
    email: str = "",
) -> CustomerCreated:
    """A new customer, optionally with a first member (``admin_username``).

    The member is created when no user has that username (with ``password``, or a
    generated one that the caller shows once); an existing user is only added, and giving
    it a ``password`` is refused rather than silently changing someone's login.
    """
    slug, name = (slug or "").strip(), (name or "").strip()
    errors: dict[str, list[str]] = {}

    def problem(field, message):
        errors.setdefault(field, []).append(message)

    try:
        slug_validator(slug)
    except ValidationError:
        problem("slug", f"“{slug}” is not a valid slug: {slug_validator.message}")
    else:
        if Customer.objects.filter(slug=slug).exists():
            problem("slug", f"A customer with the slug “{slug}” already exists.")
    if not name:
        problem("name", "Give the customer a name.")
    elif len(name) > Customer._meta.get_field("name").max_length:
        problem("name", "The name is too long (at most 200 characters).")
    try:
        validate_time_zone(time_zone)
    except ValidationError as exc:
        problem("time_zone", exc.messages[0])
    if role not in Role.values:
        problem("role", f"“{role}” is not a role; choose one of {', '.join(Role.values)}.")
    if password and not admin_username:
        problem("password", "A password needs a user: give the admin username too.")
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        try:
            with transaction.atomic():
                customer = Customer.objects.create(slug=slug, name=name, time_zone=time_zone)
        except IntegrityError as exc:  # created concurrently since the check above
            raise ValidationError(
                {"slug": f"A customer with the slug “{slug}” already exists."}
            ) from exc
        if not admin_username:
            return CustomerCreated(customer)
        existing = (
            User.objects.filter(username=admin_username).first()
            or User.objects.filter(username__iexact=admin_username).first()
        )
        if existing is not None:
            if password:
                raise ValidationError(
                    {
                        "password": f"The user “{admin_username}” already exists; leave out the "
                        "password to add them with their current one."
                    }
                )
            added = membership_add(customer, role=role, user=existing)
        else:
            added = membership_add(
                customer,
                role=role,
                new_user=NewUser(username=admin_username, email=email, password=password or ""),
            )
    return CustomerCreated(
        customer,
        membership=added.membership,
        user_created=added.user_created,
        generated_password=added.generated_password,
    )
