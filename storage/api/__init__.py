"""The storage app's agent API: ``views`` (upload sessions, snapshots), ``serializers`` and
``routes`` (the viewsets on the router)."""
