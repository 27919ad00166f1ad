"""OpenAPI description of the agent credential (loaded by ``CloudsConfig.ready``)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AgentCredentialScheme(OpenApiAuthenticationExtension):
    target_class = "clouds.api.auth.AgentCredentialAuthentication"
    name = "agentCredential"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The agent credential that enroll returned: "
            "`Authorization: Bearer acag_<prefix>.<secret>`.",
        }
