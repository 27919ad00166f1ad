"""Provider admin of the tenants app: ``customers`` (customers, memberships, users) and
``base``, the admin half of the scoping mechanism every app's admin derives from."""

from . import customers  # noqa: F401  (registers the admin pages)
