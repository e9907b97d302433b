"""ASGI entry point: HTTP (Django, with static files on the embedded default) and WebSockets.

``/ws/console/`` is for staff (session cookie or bearer token); ``/ws/webchat/`` for website
visitors (signed visitor token), each behind an origin check.  On the embedded default the
periodic jobs run inside this process too (``hub.scheduler.InProcessScheduler``).
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

from django.core.asgi import get_asgi_application

django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402

from chat.consumers import ConsoleConsumer, WebchatConsumer  # noqa: E402
from hub.auth import StaffAuthStack  # noqa: E402
from hub.origins import OriginCheck  # noqa: E402
from hub.scheduler import InProcessScheduler, in_process_wanted  # noqa: E402

if settings.HUB_SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_http = ASGIStaticFilesHandler(django_http)

websocket_app = URLRouter(
    [
        path("ws/console/", OriginCheck(StaffAuthStack(ConsoleConsumer.as_asgi()))),
        path(
            "ws/webchat/",
            OriginCheck(WebchatConsumer.as_asgi(), settings.HUB_WEBCHAT_ALLOWED_ORIGINS),
        ),
    ]
)

application = ProtocolTypeRouter({"http": django_http, "websocket": websocket_app})

# Embedded default only (SQLite, one process): no `run_scheduler` process to start, and the
# in-memory channel layer means only this process can ring its consoles' doorbells.
if in_process_wanted():
    application = InProcessScheduler(application)
