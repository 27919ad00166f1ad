from django.apps import AppConfig


class CloudsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "clouds"
    verbose_name = "Clouds and agents"

    def ready(self):
        from .api import schema  # noqa: F401  (registers the OpenAPI auth extension)
