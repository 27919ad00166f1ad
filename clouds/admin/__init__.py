"""Provider admin of the clouds app: ``agents`` (agents, enrollment tokens, credentials,
events) and ``clouds`` (clouds, download links and their log, wizard runs); ``base`` holds what
both share. Importing the package registers every page."""

from . import agents, clouds  # noqa: F401  (registers the admin pages)
