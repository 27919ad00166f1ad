from django.apps import AppConfig


class CloudsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "clouds"
    verbose_name = "Clouds and agents"
