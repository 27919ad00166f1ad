"""Forms of the tenants app: ``base`` (scoped forms every app's forms derive from) and
``users`` (login, and the customer's users page)."""
