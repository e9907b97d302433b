"""The WhatsApp stand-in (chat/channels/whatsapp_standin.py) for the hub's channel tests:
served on a loopback port from a background thread, driven over real HTTP through its
control API, and the hub's settings that point at it.

Every wait is bounded (``wait_for``); nothing patches an HTTP client.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from chat.channels.whatsapp_standin import StandinConfig, standin_app
from tests.harness import ThreadedApp

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
ACCESS_TOKEN = "test-access-token"
PHONE_NUMBER_ID = "100200300"
API_VERSION = "v21.0"
WEBHOOK_PATH = "/channels/whatsapp/webhook"

T = TypeVar("T")


def http(
    method: str,
    url: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15,
) -> tuple[int, Any]:
    """One HTTP call; (status, JSON body or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, payload = err.code, err.read()
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload.decode()


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def whatsapp_env(standin_url: str, **extra: str) -> dict[str, str]:
    """The hub's WhatsApp settings (environment) for a stand-in at ``standin_url``."""
    return {
        "WHATSAPP_API_BASE_URL": standin_url,
        "WHATSAPP_API_VERSION": API_VERSION,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WHATSAPP_TIMEOUT_SECONDS": "1",
        "WHATSAPP_SEND_ATTEMPTS": "3",
        "WHATSAPP_RETRY_BACKOFF_SECONDS": "0.05",
        **extra,
    }


def configure_settings(settings: Any, standin_url: str) -> None:
    """Point an in-process hub (pytest-django ``settings``) at the stand-in."""
    for name, value in whatsapp_env(standin_url).items():
        if name in {"WHATSAPP_TIMEOUT_SECONDS", "WHATSAPP_RETRY_BACKOFF_SECONDS"}:
            value = float(value)
        elif name == "WHATSAPP_SEND_ATTEMPTS":
            value = int(value)
        setattr(settings, name, value)


class Standin(ThreadedApp):
    """The stand-in served from a background thread with its own event loop."""

    def __init__(self, webhook_url: str, **config: Any) -> None:
        self.config = StandinConfig(
            webhook_url=webhook_url,
            app_secret=APP_SECRET,
            verify_token=VERIFY_TOKEN,
            access_token=ACCESS_TOKEN,
            phone_number_id=PHONE_NUMBER_ID,
            api_version=API_VERSION,
            **config,
        )
        super().__init__(lambda: standin_app(self.config), name="whatsapp-standin")

    # --- control API -----------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = http(method, self.url + path, body)
        assert 200 <= status < 300, (method, path, status, payload)
        return payload

    def customer_writes(self, wa_id: str, **content: Any) -> dict[str, Any]:
        """The customer sends one message; the answer carries the hub's HTTP status."""
        return self.call("POST", f"/_standin/customers/{wa_id}/messages", content)

    def messages(self, wa_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/_standin/customers/{wa_id}/messages")["messages"]

    def outbound(self, wa_id: str) -> list[dict[str, Any]]:
        return [m for m in self.messages(wa_id) if m.get("direction") == "out"]

    def fault(self, **fault: Any) -> Any:
        return self.call("POST", "/_standin/faults", fault)

    def faults(self) -> Any:
        return self.call("GET", "/_standin/faults")

    def configure(self, **values: Any) -> Any:
        return self.call("POST", "/_standin/config", values)

    def webhooks(self) -> Any:
        return self.call("GET", "/_standin/webhooks")


def wait_for(check: Callable[[], T], *, within: float = 15, what: str = "the condition") -> T:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {within} s")
        time.sleep(0.05)


@pytest.fixture
def wa(live_server: Any, settings: Any) -> Iterator[Standin]:
    """The stand-in calling the hub served by pytest-django's live server (the test
    database, real HTTP), and the hub's WhatsApp settings pointing at the stand-in."""
    with Standin(live_server.url + WEBHOOK_PATH) as standin:
        configure_settings(settings, standin.url)
        yield standin
