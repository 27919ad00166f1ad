"""REST API of the protection app (PLACEHOLDER until the API work lands)."""


def register(router) -> None:
    pass
