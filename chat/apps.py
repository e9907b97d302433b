from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from hub.scheduler import _seconds, job_register

        # Stragglers of the outbox (a crash between commit and send, temporary provider
        # failures waiting for their retry) and status callbacks that beat a send's answer.
        job_register(
            "chat.outbox_sweep",
            every=_seconds("HUB_OUTBOX_SWEEP_SECONDS", 5.0),
            func="chat.channels.outbox.outbox_sweep",
        )
