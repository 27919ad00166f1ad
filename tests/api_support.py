"""Checks shared by the API tests of every app."""


def error_of(response, status: int, message: str | None = None) -> dict:
    """The ``error`` object of a response, checked against the shared error shape."""
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    if message is not None:
        assert message in error["message"], error
    return error
