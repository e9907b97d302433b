from django.apps import AppConfig


class HsmConfig(AppConfig):
    name = "hsm"
    verbose_name = "WhatsApp templates (HSM)"
    default_auto_field = "django.db.models.BigAutoField"
