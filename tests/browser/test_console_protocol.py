"""The console page against protocol details that the main flow does not reach: the presence
selector follows the ``hello`` frame, a truncated snapshot is said so under the list, and
every way the server ends a login stops the console as "Signed out" instead of reconnecting.

Frames are altered in flight with Playwright's WebSocket routing (the page talks to the real
demo server through it), so no server state has to be faked.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.support import PageErrors, launch_chromium, sign_in

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1280, "height": 800}
CONSOLE_WS = re.compile(r"/ws/console/")


class ConsoleSocketProxy:
    """Routes the page's console sockets to the server, letting a test rewrite server frames
    and speak for the server (send a frame, close with a code)."""

    def __init__(self, page: Any, rewrite: Any = None) -> None:
        self.rewrite = rewrite
        self.routes: list[Any] = []
        page.route_web_socket(CONSOLE_WS, self._handle)

    def _handle(self, route: Any) -> None:
        self.routes.append(route)
        server = route.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if self.rewrite and isinstance(message, str):
                frame = json.loads(message)
                message = json.dumps(self.rewrite(frame))
            route.send(message)

        server.on_message(from_server)
        route.on_message(server.send)

    @property
    def current(self) -> Any:
        return self.routes[-1]


def test_presence_selector_starts_from_the_page_and_follows_hello(demo_hub):
    """The page renders the stored presence; each connection's hello frame then sets it."""
    errors = PageErrors()
    hello_presence = ["away"]

    def presence_from_test(frame: dict) -> dict:
        if frame.get("type") == "hello":
            frame["presence"] = hello_presence[-1]
        return frame

    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "operator1")
        proxy = ConsoleSocketProxy(page, rewrite=presence_from_test)
        sign_in(page, demo_hub.http, "operator1")
        # demo_seed leaves operator1 online: that is the page's first paint ...
        assert page.get_attribute("#console", "data-presence") == "online"
        # ... and the hello frame's value wins.
        assert page.input_value("#presence") == "away"
        assert page.get_attribute(".presence-dot", "data-presence") == "away"

        # A reconnect brings a new hello, and with it the presence again.
        hello_presence.append("offline")
        proxy.current.close(code=1000, reason="")
        page.wait_for_function("() => document.getElementById('presence').value === 'offline'")
        page.wait_for_selector("#conn[data-state=live]", timeout=TIMEOUT_MS)
        assert len(proxy.routes) == 2
        assert page.get_attribute(".presence-dot", "data-presence") == "offline"
    assert errors.errors == [], "\n".join(errors.errors)


def test_truncated_snapshot_shows_a_note_under_the_list(demo_hub):
    errors = PageErrors()

    def truncate(frame: dict) -> dict:
        if frame.get("type") == "snapshot":
            frame["truncated"] = True
        return frame

    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "coordinator")
        ConsoleSocketProxy(page, rewrite=truncate)
        sign_in(page, demo_hub.http, "coordinator")
        note = page.locator("#list-truncated")
        note.wait_for(state="visible", timeout=TIMEOUT_MS)
        assert note.text_content() == "Showing the 200 most recent conversations"
        rows = page.locator("#conv-list button.conv").count()
        assert page.text_content("#list-count") == f"{rows}+"
    assert errors.errors == [], "\n".join(errors.errors)


@pytest.mark.parametrize(
    ("reason", "code", "message"),
    [
        ("logged_out", 4401, "You signed out in another window."),
        ("account_disabled", 4401, "Your account has been disabled."),
        ("session_ended", 4401, "Your session has ended."),
        # A proxy may not pass the application close code on: the reason alone is enough.
        ("session_ended", 1000, "Your session has ended."),
    ],
)
def test_every_signed_out_reason_stops_the_console(demo_hub, reason, code, message):
    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "operator1")
        proxy = ConsoleSocketProxy(page)
        sign_in(page, demo_hub.http, "operator1")
        proxy.current.send(json.dumps({"type": "closing", "reason": reason}))
        proxy.current.close(code=code, reason="")
        page.wait_for_selector("#conn[data-state=offline]", timeout=TIMEOUT_MS)
        assert page.text_content("#conn .conn-text") == "Signed out"
        notice = page.locator("#notices .notice-error")
        assert notice.locator(".notice-text").text_content() == (
            message + " Sign in again to keep working."
        )
        assert notice.locator("a.notice-link").get_attribute("href") == (
            "/accounts/login/?next=/console/"
        )
        # It stays stopped: no reconnect attempt.
        page.wait_for_timeout(1500)
        assert len(proxy.routes) == 1
        assert page.get_attribute("#conn", "data-state") == "offline"
    assert errors.errors == [], "\n".join(errors.errors)


def test_other_closing_reasons_reconnect(demo_hub):
    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "operator1")
        proxy = ConsoleSocketProxy(page)
        sign_in(page, demo_hub.http, "operator1")
        proxy.current.send(json.dumps({"type": "closing", "reason": "server_restart"}))
        proxy.current.close(code=1000, reason="")
        page.wait_for_function("() => document.querySelectorAll('#notices .notice').length > 0")
        page.wait_for_selector("#conn[data-state=live]", timeout=TIMEOUT_MS)
        assert len(proxy.routes) == 2
        assert page.locator("#notices .notice-error").count() == 0
    assert errors.errors == [], "\n".join(errors.errors)


def test_signing_out_in_another_tab_stops_the_console(demo_hub):
    """The real path: the server's logout signal closes this session's console socket."""
    errors = PageErrors()
    with launch_chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        console = errors.watch(context.new_page(), "console")
        sign_in(console, demo_hub.http, "operator2")
        other = errors.watch(context.new_page(), "other tab")
        other.goto(f"{demo_hub.http}/console/")
        other.wait_for_selector("#conn[data-state=live]", timeout=TIMEOUT_MS)
        other.click("form.signout button[type=submit]")
        console.wait_for_selector("#conn[data-state=offline]", timeout=TIMEOUT_MS)
        assert console.text_content("#conn .conn-text") == "Signed out"
        assert "You signed out in another window." in console.text_content("#notices")
    assert errors.errors == [], "\n".join(errors.errors)
