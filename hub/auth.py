"""Authentication services and transports: bearer tokens for non-browser clients.

Browsers use the Django session cookie; API clients and scripts get a token from
``POST /api/auth/token/`` and send ``Authorization: Bearer <token>`` both on HTTP calls and on
the WebSocket handshake.  Tokens are random, stored only as SHA-256, expire, and are revoked
when the account is disabled.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from hub.exceptions import InvalidCredentials
from hub.models import ApiToken

TOKEN_PREFIX = "hub_"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_issue(*, username: str, password: str) -> tuple[str, ApiToken]:
    """Check credentials and return a new raw token (shown once) with its row.

    Raises InvalidCredentials for a wrong password, an unknown or an inactive user alike.
    """
    user = authenticate(username=username, password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        key_hash=_hash(raw),
        expires_at=timezone.now() + timedelta(hours=settings.HUB_API_TOKEN_TTL_HOURS),
    )
    return raw, token


def api_token_revoke_all(*, user_id: int) -> int:
    return ApiToken.objects.filter(user_id=user_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def user_for_token(raw: str) -> AbstractBaseUser | None:
    """The active user a live token belongs to, or None."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_hash(raw), revoked_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    return token.user


def bearer_from_headers(headers: list[tuple[bytes, bytes]] | dict[str, str]) -> str | None:
    """The raw token of an ``Authorization: Bearer`` header (ASGI list or Django META)."""
    value = None
    if isinstance(headers, dict):
        value = headers.get("HTTP_AUTHORIZATION")
    else:
        for name, raw in headers:
            if name.lower() == b"authorization":
                value = raw.decode("latin-1")
                break
    if not value:
        return None
    scheme, _, credential = value.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


class BearerTokenMiddleware:
    """HTTP: a valid bearer token authenticates the request (and exempts it from CSRF,
    which protects cookies, not explicit headers)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = bearer_from_headers(request.META)
        if raw is not None:
            user = user_for_token(raw)
            request.user = user if user is not None else AnonymousUser()
            request.hub_auth = "token" if user is not None else "bad_token"
            request._dont_enforce_csrf_checks = True
        return self.get_response(request)


class BearerTokenWebsocketMiddleware:
    """WebSocket: a bearer token on the handshake overrides the session user."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> Any:
        raw = bearer_from_headers(scope.get("headers", []))
        if raw is not None:
            user = await database_sync_to_async(user_for_token)(raw)
            scope = dict(scope, user=user or AnonymousUser(), hub_token=raw)
        return await self.inner(scope, receive, send)


def StaffAuthStack(inner: Any) -> Any:
    return AuthMiddlewareStack(BearerTokenWebsocketMiddleware(inner))


def user_session_still_valid(*, user_id: int, session_key: str | None, token: str | None) -> bool:
    """Is the login a socket was opened with still good?  Polled by open consoles so that
    logging out or disabling an account closes its sockets within seconds."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    if token is not None:
        return user_for_token(token) is not None
    if session_key is not None:
        from django.contrib.sessions.models import Session

        return Session.objects.filter(
            session_key=session_key, expire_date__gt=timezone.now()
        ).exists()
    return False
