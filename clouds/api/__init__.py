"""The REST API of the clouds app.

``agent`` is the agent API under ``/api/v1/agent/`` (enroll, heartbeat, inventory, events,
jobs), built on ``base`` (credential authentication from ``auth``, error bodies, size-limited
bodies) and described to OpenAPI by ``schema``. ``customer`` is the customer API of clouds
and download links under ``/api/v1/c/<slug>/``. Their serializers are in ``serializers/``, one
module per API; ``routes`` puts the viewsets on the router. A new endpoint goes into the
module of its API and is registered in ``routes``."""
