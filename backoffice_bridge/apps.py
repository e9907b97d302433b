from django.apps import AppConfig


class BackofficeBridgeConfig(AppConfig):
    name = "backoffice_bridge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice_bridge.confirmation import inbound_confirmation_handle
        from chat.hooks import inbound_handler_register
        from hub.scheduler import _seconds, job_register

        # The customer's answer to a confirmation prompt arrives as a chat message.
        inbound_handler_register("backoffice_bridge.confirmation", inbound_confirmation_handle)

        # Expiry of undecided requests, execution an approval's process did not finish,
        # and the revert of temporary limits.
        job_register(
            "backoffice_bridge.tick",
            every=_seconds("BACKOFFICE_TICK_SECONDS", 15.0),
            func="backoffice_bridge.services.backoffice_tick",
        )
