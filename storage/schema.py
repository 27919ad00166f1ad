"""OpenAPI description of the agent credential (loaded by ``StorageConfig.ready``)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "storage.auth.ApiKeyAuthentication"
    name = "agentKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An agent credential: `Authorization: Bearer ak_<prefix>.<secret>`.",
        }
