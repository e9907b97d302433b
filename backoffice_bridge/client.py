"""The hub's client of the bank's back office (infrastructure, beside the services).

aiohttp, one ``ClientSession`` per event loop (a process serving one loop has one session),
a per-attempt timeout, and bounded retries with exponential backoff on what may be
temporary — 5xx, timeouts, connection errors — never on a 4xx, which is the back office's
answer.  Every write carries an ``Idempotency-Key`` and each retry sends the *same* key, so
a request whose answer was lost is never performed twice.

Services are synchronous; they call through ``backoffice_call`` which runs the coroutine on
a private loop thread of this process (one session for every sync caller) and refuses to
run inside a database transaction: a row lock must never be held across a network call,
and an action must never be sent for a change that may still roll back.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

from hub.http import http_session, http_session_close

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class BackofficeResponse:
    """One answered request: the final status and JSON body, after ``attempts`` tries."""

    status: int
    body: dict[str, Any]
    attempts: int
    replayed: bool = False


class BackofficeError(Exception):
    """Base of the client's failures (not a HubError: services translate it)."""

    def __init__(self, reason: str, *, attempts: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class BackofficeRefused(BackofficeError):
    """The back office answered 4xx: a decision, not retried."""

    def __init__(self, reason: str, *, status: int, code: str, attempts: int) -> None:
        super().__init__(reason, attempts=attempts)
        self.status = status
        self.code = code


class BackofficeUnavailable(BackofficeError):
    """5xx, timeouts or connection errors until the attempts ran out."""


class BackofficeNotConfigured(BackofficeError):
    """BACKOFFICE_BASE_URL or BACKOFFICE_TOKEN is not set."""


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    token: str
    timeout_seconds: float = 5.0
    attempts: int = 3
    backoff_seconds: float = 0.2
    #: Cap of one backoff sleep.
    backoff_max_seconds: float = 5.0
    extra_headers: dict[str, str] = field(default_factory=dict)


def config_from_settings() -> ClientConfig:
    """The hub's settings (env BACKOFFICE_*); no secret has a default."""
    from django.conf import settings

    base_url = getattr(settings, "BACKOFFICE_BASE_URL", "")
    token = getattr(settings, "BACKOFFICE_TOKEN", "")
    if not base_url or not token:
        raise BackofficeNotConfigured("BACKOFFICE_BASE_URL and BACKOFFICE_TOKEN must be set")
    return ClientConfig(
        base_url=base_url.rstrip("/"),
        token=token,
        timeout_seconds=settings.BACKOFFICE_TIMEOUT_SECONDS,
        attempts=max(1, settings.BACKOFFICE_ATTEMPTS),
        backoff_seconds=settings.BACKOFFICE_BACKOFF_SECONDS,
    )


# --- the client ----------------------------------------------------------------------------


def _retryable(status: int) -> bool:
    return status >= 500


class BackofficeClient:
    """The back office's API (docs/backoffice.md).  Methods are coroutines."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> BackofficeResponse:
        """Send one request, retrying what may be temporary; the same key every time.

        Raises BackofficeRefused on a 4xx, BackofficeUnavailable when the attempts ran out.
        """
        if method != "GET" and not idempotency_key:
            raise ValueError("every write needs an idempotency key")
        c = self.config
        headers = {"Authorization": f"Bearer {c.token}", **c.extra_headers}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        timeout = aiohttp.ClientTimeout(total=c.timeout_seconds)
        last = "no attempt made"
        for attempt in range(1, c.attempts + 1):
            try:
                async with http_session().request(
                    method,
                    c.base_url + path,
                    json=body,
                    params=params,
                    headers=headers,
                    timeout=timeout,
                ) as response:
                    payload = await _json(response)
                    if response.status < 400:
                        return BackofficeResponse(
                            status=response.status,
                            body=payload,
                            attempts=attempt,
                            replayed=response.headers.get("Idempotent-Replayed") == "true",
                        )
                    error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
                    reason = str(error.get("reason") or f"HTTP {response.status}")
                    if not _retryable(response.status):
                        raise BackofficeRefused(
                            reason,
                            status=response.status,
                            code=str(error.get("code") or "refused"),
                            attempts=attempt,
                        )
                    last = f"HTTP {response.status}: {reason}"
            except TimeoutError:
                last = f"no answer within {c.timeout_seconds:g} s"
            except aiohttp.ClientError as exc:
                last = f"connection error: {type(exc).__name__}"
            logger.warning(
                "back office %s %s attempt %d/%d: %s", method, path, attempt, c.attempts, last
            )
            if attempt < c.attempts:
                await asyncio.sleep(
                    min(c.backoff_max_seconds, c.backoff_seconds * 2 ** (attempt - 1))
                )
        raise BackofficeUnavailable(last, attempts=c.attempts)

    # -- the calls the hub makes --------------------------------------------------------

    async def users_search(self, *, query: str, field: str | None = None) -> list[dict[str, Any]]:
        params = {"q": query} | ({"field": field} if field else {})
        return (await self.request("GET", "/api/v1/users", params=params)).body["users"]

    async def user_get(self, *, user_id: str) -> dict[str, Any]:
        return (await self.request("GET", f"/api/v1/users/{_seg(user_id)}")).body["user"]

    async def write(
        self, path: str, *, idempotency_key: str, body: dict[str, Any] | None = None
    ) -> BackofficeResponse:
        return await self.request("POST", path, body=body or {}, idempotency_key=idempotency_key)

    async def case_get(self, *, case_id: str) -> dict[str, Any]:
        return (await self.request("GET", f"/api/v1/cases/{_seg(case_id)}")).body["case"]


def user_path(user_id: str, suffix: str) -> str:
    """``/api/v1/users/<id>/<suffix>`` with the id quoted."""
    return f"/api/v1/users/{_seg(user_id)}/{suffix}"


def _seg(value: str) -> str:
    return quote(value, safe="")


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        payload = await response.json(content_type=None)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


# --- the sync entry point for services -----------------------------------------------------

_private_loop: asyncio.AbstractEventLoop | None = None
_private_lock = threading.Lock()


def _private() -> asyncio.AbstractEventLoop:
    global _private_loop
    with _private_lock:
        if _private_loop is None or _private_loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="hub-backoffice-loop", daemon=True
            ).start()
            _private_loop = loop
            atexit.register(_private_stop)
        return _private_loop


def _private_stop() -> None:
    global _private_loop
    loop = _private_loop
    if loop is None or loop.is_closed():
        return
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(http_session_close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    _private_loop = None


def assert_no_transaction() -> None:
    """Back-office calls never run inside a database transaction (module docstring)."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:
            raise RuntimeError(
                "a back-office call must not run inside a database transaction "
                f"(database {conn.alias!r} is in an atomic block)"
            )


def backoffice_call(
    call: Callable[[BackofficeClient], Coroutine[Any, Any, T]],
    *,
    config: ClientConfig | None = None,
) -> T:
    """Run ``call(client)`` on the private loop and wait for it (from sync code only).

    Refuses inside a transaction.  The wait is bounded by the client's own timeouts,
    attempts and backoff, plus a margin.
    """
    assert_no_transaction()
    cfg = config or config_from_settings()
    client = BackofficeClient(cfg)
    bound = cfg.attempts * (cfg.timeout_seconds + cfg.backoff_max_seconds) + 10
    future = asyncio.run_coroutine_threadsafe(call(client), _private())
    return future.result(bound)
