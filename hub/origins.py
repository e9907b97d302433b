"""WebSocket origin check: browsers must come from an allowed origin.

Cross-site WebSocket hijacking needs a browser riding the victim's cookie, and browsers always
send ``Origin``.  A handshake without ``Origin`` is a non-browser client (it must bring a
bearer token to be anyone), so it passes; one with a foreign ``Origin`` is refused (HTTP 403).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import validate_host


def _allowed_hosts(extra_origins: list[str]) -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    for origin in extra_origins:
        parsed = urlparse(origin if "//" in origin else f"//{origin}")
        if parsed.hostname:
            hosts.append(parsed.hostname)
    if settings.DEBUG:
        hosts += ["localhost", "127.0.0.1", "[::1]"]
    return hosts


class OriginCheck:
    def __init__(self, inner: Any, extra_origins: list[str] | None = None) -> None:
        self.inner = inner
        self.extra_origins = extra_origins or []

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> Any:
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                origin = value.decode("latin-1")
                break
        if origin is not None:
            host = urlparse(origin).hostname
            if not host or not validate_host(host, _allowed_hosts(self.extra_origins)):
                return await WebsocketDenier()(scope, receive, send)
        return await self.inner(scope, receive, send)
