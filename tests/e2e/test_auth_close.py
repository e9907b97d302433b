"""Console sockets follow the login they were opened with (PostgreSQL + local Redis).

* Logging out (session cookie) or disabling the account closes that user's open console
  within seconds with 4401, even when the socket is on another process: the close order is
  a doorbell on the user's group.  ``web2`` re-checks logins only every 30 s, so a close
  there within seconds can only come from the doorbell.
* A disable that sends no signal (a bulk SQL update) is still caught by the process's
  periodic login check (``web1``: every 2 s, the default).
* A console handshake without valid credentials is closed with 4401; a handshake with a
  foreign ``Origin`` is refused (HTTP 403) on both sockets, credentials or not.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import psycopg
import pytest
import websockets

from tests.e2e.client import STAFF_PASSWORD, Console, Customer, expect_close, recv_json
from tests.e2e.conftest import prepare_hub
from tests.harness import HubProcess, api_token, fresh_postgres, http_json, manage
from tests.services import require_redis

pytestmark = pytest.mark.e2e

BANK_ORIGIN = "https://www.bank.example"  # HUB_WEBCHAT_ALLOWED_ORIGINS: hosts the widget
CLOSE_WITHIN = 3.0  # seconds, for the doorbell path


@dataclass
class Stack:
    env: dict[str, str]
    db_url: str
    web1: HubProcess  # default login re-check (2 s)
    web2: HubProcess  # login re-check every 30 s: only a doorbell closes a socket quickly


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    redis_url = require_redis()
    log_dir = tmp_path_factory.mktemp("auth_close")
    with fresh_postgres() as db_url:
        env = prepare_hub(
            db_url,
            redis_url,
            {name: {} for name in ("alice", "bob", "carol", "dave")},
            HUB_WEBCHAT_ALLOWED_ORIGINS=BANK_ORIGIN,
        )
        slow_env = dict(env, HUB_WS_REVALIDATE_SECONDS="30")
        with (
            HubProcess(env, log_dir=log_dir) as web1,
            HubProcess(slow_env, log_dir=log_dir) as web2,
        ):
            yield Stack(env, db_url, web1, web2)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Browser:
    """Just enough of a browser for Django's login and logout forms (cookies, CSRF)."""

    def __init__(self, base_http: str) -> None:
        self.base = base_http
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect
        )

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def _post_form(self, path: str, fields: dict[str, str]) -> int:
        body = urlencode({**fields, "csrfmiddlewaretoken": self.cookie("csrftoken")}).encode()
        try:
            with self.opener.open(f"{self.base}{path}", data=body, timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code

    def login(self, username: str, password: str) -> None:
        with self.opener.open(f"{self.base}/accounts/login/", timeout=10) as resp:
            assert resp.status == 200
        status = self._post_form("/accounts/login/", {"username": username, "password": password})
        assert status == 302, f"login failed ({status})"
        assert self.cookie("sessionid")

    def logout(self) -> None:
        assert self._post_form("/accounts/logout/", {}) == 302


async def _closed_within(console: Console, seconds: float) -> tuple[int, list[dict], float]:
    started = time.perf_counter()
    code, frames = await expect_close(console.ws, within=seconds + 5)
    return code, frames, time.perf_counter() - started


def test_logout_closes_the_session_console_on_another_process(stack):
    browser = Browser(stack.web1.http)
    browser.login("alice", STAFF_PASSWORD)

    async def scenario() -> None:
        console = await Console.connect(
            stack.web2.ws,
            additional_headers={"Cookie": browser.cookie_header},
            origin=f"http://127.0.0.1:{stack.web2.port}",
        )
        assert console.opening[0]["user"]["username"] == "alice"
        assert (await console.request({"type": "ping"}))["type"] == "pong"
        await asyncio.to_thread(browser.logout)
        code, frames, took = await _closed_within(console, CLOSE_WITHIN)
        assert code == 4401
        assert {"type": "closing", "reason": "logged_out"} in frames, frames
        assert took < CLOSE_WITHIN, took
        # The old cookie no longer opens a console.
        again = await websockets.connect(
            f"{stack.web2.ws}/ws/console/",
            additional_headers={"Cookie": browser.cookie_header},
        )
        assert (await expect_close(again))[0] == 4401

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_disabling_the_account_closes_its_console(stack):
    token = api_token(stack.web2.http, "bob", STAFF_PASSWORD)

    async def scenario() -> None:
        console = await Console.connect(stack.web2.ws, token)
        await asyncio.to_thread(
            manage,
            stack.env,
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model;"
            "u = get_user_model().objects.get(username='bob');"
            "u.is_active = False; u.save()",
        )
        code, frames, took = await _closed_within(console, CLOSE_WITHIN)
        assert code == 4401
        assert {"type": "closing", "reason": "account_disabled"} in frames, frames
        assert took < CLOSE_WITHIN, took
        # The token dies with the account: neither the socket nor the API accept it.
        again = await websockets.connect(
            f"{stack.web1.ws}/ws/console/", additional_headers={"Authorization": f"Bearer {token}"}
        )
        assert (await expect_close(again))[0] == 4401

    asyncio.run(asyncio.wait_for(scenario(), 30))
    status, body = http_json("GET", f"{stack.web1.http}/api/conversations/", token=token)
    assert status == 401, body


def test_a_silent_disable_is_caught_by_the_periodic_login_check(stack):
    token = api_token(stack.web1.http, "carol", STAFF_PASSWORD)

    async def scenario() -> None:
        console = await Console.connect(stack.web1.ws, token)

        def disable_without_signals() -> None:
            with psycopg.connect(stack.db_url, autocommit=True) as conn:
                conn.execute("UPDATE auth_user SET is_active = false WHERE username = 'carol'")

        await asyncio.to_thread(disable_without_signals)
        code, frames, took = await _closed_within(console, 5)
        assert code == 4401
        assert {"type": "closing", "reason": "session_ended"} in frames, frames
        assert took < 5, took

    asyncio.run(asyncio.wait_for(scenario(), 30))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer hub_not-a-real-token"},
        {"Authorization": "Basic ZGF2ZTp4"},
        {"Cookie": "sessionid=forged"},
    ],
    ids=["nothing", "unknown-token", "basic-auth", "forged-session"],
)
def test_console_without_valid_credentials_is_closed_4401(stack, headers):
    async def scenario() -> None:
        ws = await websockets.connect(f"{stack.web1.ws}/ws/console/", additional_headers=headers)
        code, frames = await expect_close(ws)
        assert code == 4401
        assert not [f for f in frames if f["type"] in {"hello", "snapshot", "event"}], frames

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_foreign_origin_is_refused_even_with_credentials(stack):
    token = api_token(stack.web1.http, "dave", STAFF_PASSWORD)
    browser = Browser(stack.web1.http)
    browser.login("dave", STAFF_PASSWORD)
    staff_credentials = [
        {"Authorization": f"Bearer {token}"},
        {"Cookie": browser.cookie_header},
    ]

    async def refused(path: str, origin: str, headers: dict[str, str] | None = None) -> None:
        with pytest.raises(websockets.InvalidStatus) as refusal:
            await websockets.connect(
                f"{stack.web1.ws}{path}", origin=origin, additional_headers=headers
            )
        assert refusal.value.response.status_code == 403

    async def scenario() -> None:
        for headers in staff_credentials:
            await refused("/ws/console/", "https://evil.example", headers)
            # The bank's site may embed the web chat, not open a staff console.
            await refused("/ws/console/", BANK_ORIGIN, headers)
        await refused("/ws/webchat/", "https://evil.example")
        await refused("/ws/webchat/", "null")

        # Positive controls: the hub's own origin and the allowed web chat origin work.
        own = f"http://127.0.0.1:{stack.web1.port}"
        for headers in staff_credentials:
            console = await Console.connect(stack.web1.ws, additional_headers=headers, origin=own)
            assert console.opening[0]["user"]["username"] == "dave"
            await console.close()
        for origin in (own, BANK_ORIGIN):
            customer = await Customer.connect(stack.web1.ws, origin=origin)
            assert customer.session["token"]
            await customer.close()
        # Non-browser clients send no Origin at all and are judged by their credentials.
        ws = await websockets.connect(f"{stack.web1.ws}/ws/webchat/")
        assert (await recv_json(ws))["type"] == "session"
        await ws.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))
