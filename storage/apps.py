from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "storage"
    verbose_name = "Snapshot storage"

    def ready(self):
        from . import schema  # noqa: F401  (registers the OpenAPI auth extension)
