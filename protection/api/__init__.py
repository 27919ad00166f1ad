"""The protection app's customer API: ``views`` (machine groups and machines),
``serializers`` and ``routes`` (the viewsets on the router)."""
