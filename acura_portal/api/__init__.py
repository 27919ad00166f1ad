"""The one API under /api/v1/: ``router`` (the router and the JSON error format every endpoint
shares, ``exception_handler``, re-exported here for ``REST_FRAMEWORK``) and ``routes`` (every
app's viewsets registered on it)."""

from .router import exception_handler

__all__ = ["exception_handler"]
