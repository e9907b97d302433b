from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_roles(sender: AppConfig, **kwargs: object) -> None:
    from hub.roles import role_groups_ensure

    role_groups_ensure()


def _close_sockets_on_logout(
    sender: object, request: object = None, user: object = None, **kwargs: object
) -> None:
    from hub.sockets import user_sockets_close

    if user is not None:
        session = getattr(request, "session", None)
        user_sockets_close(
            user_id=user.pk,
            reason="logged_out",
            session_key=getattr(session, "session_key", None),
        )


def _close_sockets_on_disable(sender: object, instance: object, **kwargs: object) -> None:
    from hub.sockets import user_sockets_close

    if not instance.is_active:
        user_sockets_close(user_id=instance.pk, reason="account_disabled")


class HubConfig(AppConfig):
    name = "hub"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_save

        post_migrate.connect(_ensure_roles, sender=self, dispatch_uid="hub.ensure_roles")
        # Decoupled reactions: whichever path logs out or disables a user (views, admin,
        # shell), the user's open sockets are told to close.  Consoles also re-check
        # their login every few seconds, so a missed signal is still caught.
        user_logged_out.connect(_close_sockets_on_logout, dispatch_uid="hub.logout_close")
        post_save.connect(
            _close_sockets_on_disable, sender=get_user_model(), dispatch_uid="hub.disable_close"
        )
