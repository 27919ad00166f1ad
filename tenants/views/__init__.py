"""Pages of the tenants app: ``base`` (the web half of the scoping mechanism every customer
page derives from), ``login`` (login, logout, the customer chooser) and ``users`` (the
customer's users page)."""
