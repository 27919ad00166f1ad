"""Template context for the page chrome: current customer, role, and the switcher."""

from .selectors import memberships_of


def tenancy(request):
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_customer": getattr(request, "customer", None),
        "current_membership": membership,
        "my_memberships": memberships_of(user),
    }
