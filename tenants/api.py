"""REST API of the tenants app (PLACEHOLDER until the API work lands)."""


def register(router) -> None:
    pass
