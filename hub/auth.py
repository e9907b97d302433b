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

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from channels.auth import AuthMiddlewareStack
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
    which protects cookies, not explicit headers).

    Sync and async capable: under daphne an async view (the provider webhooks) then runs
    without a hop to a fresh thread for the middleware chain; the token lookup itself goes
    to a thread only when a token is present."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    @staticmethod
    def _authenticate(request: HttpRequest, user: Any) -> None:
        request.user = user if user is not None else AnonymousUser()
        request.hub_auth = "token" if user is not None else "bad_token"
        request._dont_enforce_csrf_checks = True

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        raw = bearer_from_headers(request.META)
        if raw is not None:
            self._authenticate(request, user_for_token(raw))
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        raw = bearer_from_headers(request.META)
        if raw is not None:
            self._authenticate(request, await sync_to_async(user_for_token)(raw))
        return await self.get_response(request)


class BearerTokenWebsocketMiddleware:
    """WebSocket: a bearer token on the handshake authenticates the socket; without one the
    session cookie does (Channels' session and auth middleware).

    A token handshake skips the session middleware and leaves the token in
    ``scope["hub_token"]`` with an anonymous user: the consumer resolves it in its first
    database hop (``chat.selectors.console_open``) together with everything else the
    handshake reads, rather than on Channels' single sync thread in a hop of its own.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.session_auth = AuthMiddlewareStack(inner)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> Any:
        raw = bearer_from_headers(scope.get("headers", []))
        if raw is None:
            return await self.session_auth(scope, receive, send)
        return await self.inner(dict(scope, user=AnonymousUser(), hub_token=raw), receive, send)


def StaffAuthStack(inner: Any) -> Any:
    return BearerTokenWebsocketMiddleware(inner)


def logins_still_valid(logins: list[tuple[int, str | None, str | None]]) -> list[bool]:
    """For each open socket's login (user id, session key, API token): is it still good?

    One pass for all the sockets of a process, polled every few seconds, so that logging out
    or disabling an account (even by a bulk update that sends no signal) closes its sockets
    within seconds without one query per socket.
    """
    from django.contrib.sessions.models import Session

    if not logins:
        return []
    user_ids = {user_id for user_id, _, _ in logins}
    active = set(
        get_user_model()
        .objects.filter(pk__in=user_ids, is_active=True)
        .values_list("pk", flat=True)
    )
    session_keys = {key for _, key, token in logins if key and not token}
    live_sessions = set(
        Session.objects.filter(
            session_key__in=session_keys, expire_date__gt=timezone.now()
        ).values_list("session_key", flat=True)
    )
    token_hashes = {_hash(token): token for _, _, token in logins if token}
    live_tokens = {
        token_hashes[h]
        for h in ApiToken.objects.filter(
            key_hash__in=token_hashes, revoked_at__isnull=True, expires_at__gt=timezone.now()
        ).values_list("key_hash", flat=True)
    }
    results = []
    for user_id, session_key, token in logins:
        if user_id not in active:
            results.append(False)
        elif token:
            results.append(token in live_tokens)
        elif session_key:
            results.append(session_key in live_sessions)
        else:  # a scope built without a session (in-process tests): the account decides
            results.append(True)
    return results
