"""The tenants app's API: ``base`` is the API half of the scoping mechanism (viewsets,
serializer fields, pagination) every app's API derives from; ``serializers`` holds the error
body every endpoint shares; ``views`` the customers the caller belongs to; ``routes`` puts
them on the router."""
