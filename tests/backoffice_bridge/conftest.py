"""The back-office stand-in (backoffice_bridge/standin.py) for the bridge's tests: served
on a loopback port from a background thread for the whole module, reset before each
test, driven over real HTTP through its control API; the hub's settings point at it.

Every wait is bounded; nothing patches the HTTP client.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from backoffice_bridge.standin import StandinConfig, standin_app
from tests.harness import ThreadedApp

TOKEN = "test-backoffice-token"


def http(
    method: str, url: str, body: Any = None, *, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One HTTP call; (status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, payload = err.code, err.read()
    return status, json.loads(payload) if payload else None


class Standin(ThreadedApp):
    """The stand-in served from a background thread with its own event loop."""

    def __init__(self) -> None:
        self.config = StandinConfig(token=TOKEN)
        super().__init__(lambda: standin_app(self.config), name="bo-standin")

    # --- the API, as the bank's other systems would call it --------------------------
    def api(
        self, method: str, path: str, body: Any = None, *, key: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if key:
            headers["Idempotency-Key"] = key
        return http(method, self.url + path, body, headers=headers)

    # --- control API -----------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = http(method, self.url + path, body)
        assert 200 <= status < 300, (method, path, status, payload)
        return payload

    def reset(self) -> None:
        self.call("POST", "/_standin/reset")

    def fault(self, **fault: Any) -> Any:
        return self.call("POST", "/_standin/faults", fault)

    def calls(self, path: str = "", key: str = "") -> list[dict[str, Any]]:
        query = "&".join(f"{n}={v}" for n, v in (("path", path), ("idempotency_key", key)) if v)
        return self.call("GET", f"/_standin/calls?{query}")["calls"]

    def user(self, user_id: str) -> dict[str, Any]:
        return self.call("GET", f"/_standin/users/{user_id}")["user"]

    def put_user(self, **user: Any) -> dict[str, Any]:
        return self.call("POST", "/_standin/users", user)["user"]

    def set_maximum(self, **maximum: int) -> Any:
        return self.call("POST", "/_standin/config", {"maximum": maximum})


@pytest.fixture(scope="session")
def standin_server() -> Iterator[Standin]:
    with Standin() as standin:
        yield standin


@pytest.fixture
def bo(standin_server: Standin, settings: Any) -> Iterator[Standin]:
    """A freshly reset stand-in, and the hub's back-office settings pointing at it (short
    timeouts and backoff so retries are quick).  At teardown the process's background
    executions are awaited, so none outlives the test's settings."""
    from backoffice_bridge.executor import executions_wait

    standin_server.reset()
    settings.BACKOFFICE_BASE_URL = standin_server.url
    settings.BACKOFFICE_TOKEN = TOKEN
    settings.BACKOFFICE_TIMEOUT_SECONDS = 0.5
    settings.BACKOFFICE_ATTEMPTS = 3
    settings.BACKOFFICE_BACKOFF_SECONDS = 0.02
    yield standin_server
    assert executions_wait(30), "background back-office executions still running after 30 s"


@pytest.fixture
def linked(bo: Standin, staff: Any) -> dict[str, Any]:
    """A web chat conversation assigned to a contact-center operator, its customer linked to
    bank user U1001 (Ana García), and a coordinator and an admin as checkers."""
    from backoffice_bridge import services
    from chat.services import webchat_message_receive
    from hub.roles import Role

    maker = staff("cc1", Role.CONTACT_CENTER, online=True)
    checker = staff("coord1", Role.COORDINATOR)
    checker2 = staff("admin1", Role.ADMIN)
    received = webchat_message_receive(
        visitor_id="bo-v1", client_id="1", text="I lost my phone", display_name="Ana"
    )
    conversation_id = received.conversation["id"]
    services.customer_link(actor=maker, conversation_id=conversation_id, bank_user_id="U1001")
    return {
        "maker": maker,
        "checker": checker,
        "checker2": checker2,
        "conversation_id": conversation_id,
    }
