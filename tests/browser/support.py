"""Helpers for the browser tests: launching Debian's Chromium through Playwright, signing in,
and collecting every JavaScript error a page reports.

Nothing is skipped: without Chromium or the playwright package a test fails and names what to
install.  The browser is the distribution's ``chromium`` package; ``playwright install`` (which
downloads browsers) is never used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import HubProcess, hub_env, manage, migrate

CHROMIUM = os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEMO_PASSWORD = "demo"
TIMEOUT_MS = 15_000
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 400, "height": 800}


def chromium_path() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not path:
        pytest.fail(
            f"Chromium is not installed (looked for {CHROMIUM} and `chromium` on PATH). "
            "Install Debian's package: apt-get install -y chromium",
            pytrace=False,
        )
    return path


@contextlib.contextmanager
def launch_chromium() -> Iterator[Any]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "The playwright Python package is missing: pip install -e '.[dev]' "
            "(the browser itself comes from apt-get install -y chromium)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageErrors:
    """Console errors and uncaught exceptions of every page it watches."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Any, name: str) -> Any:
        def on_console(msg: Any) -> None:
            if msg.type == "error":
                self.errors.append(f"[{name}] console.error: {msg.text}")

        def on_page_error(exc: Any) -> None:
            self.errors.append(f"[{name}] uncaught: {exc}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        return page

    def unexpected(self, allowed_statuses: Iterable[int] = ()) -> list[str]:
        """Every error except Chromium's "Failed to load resource" line for an answer with
        one of ``allowed_statuses``: a page that asks for a 4xx on purpose (validation, a
        stale version, a refused page) makes Chromium log it, and only those are allowed."""
        statuses = "|".join(str(status) for status in allowed_statuses)
        if not statuses:
            return list(self.errors)
        expected = re.compile(
            rf"Failed to load resource: the server responded with a status of ({statuses}) "
        )
        return [e for e in self.errors if not expected.search(e)]


class FrameLog:
    """The JSON frames a page's WebSockets send, to assert on the protocol the page speaks."""

    def __init__(self, page: Any) -> None:
        self.sent: list[str] = []
        page.on("websocket", self._attach)

    def _attach(self, ws: Any) -> None:
        ws.on("framesent", self._on_sent)

    def _on_sent(self, payload: str | bytes) -> None:
        self.sent.append(payload if isinstance(payload, str) else "")

    def frames_sent(self) -> list[dict[str, Any]]:
        frames = []
        for raw in self.sent:
            with contextlib.suppress(ValueError):
                frame = json.loads(raw)
                if isinstance(frame, dict):
                    frames.append(frame)
        return frames

    def types_sent(self) -> list[str]:
        return [frame.get("type") for frame in self.frames_sent()]

    def history_requests(self) -> list[str]:
        """The conversation ids of every ``conversation.history`` frame sent, in order."""
        return [
            f.get("conversation_id")
            for f in self.frames_sent()
            if f.get("type") == "conversation.history"
        ]


def sign_in_to(
    page: Any,
    base_url: str,
    path: str,
    username: str,
    password: str = DEMO_PASSWORD,
    *,
    ready: str | None = None,
    timeout_ms: float | None = TIMEOUT_MS,
) -> None:
    """Sign in through the login form straight to ``path``; then wait for ``ready`` (a
    selector the page's script sets once it has loaded), if given."""
    page.goto(f"{base_url}/accounts/login/?next={path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")
    if ready is not None:
        page.wait_for_selector(ready, timeout=timeout_ms)


def sign_in(page: Any, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in to the console and wait until its socket is live."""
    sign_in_to(
        page,
        base_url,
        "/console/",
        username,
        password,
        ready="#conn[data-state=live]",
        timeout_ms=None,
    )


@contextlib.contextmanager
def screenshots_on_failure(pages: dict[str, Any], directory: Path, prefix: str) -> Iterator[None]:
    """Save a full-page screenshot of every page (``<prefix>-<name>.png``) when the block
    fails, then let the failure through."""
    try:
        yield
    except BaseException:
        for name, page in pages.items():
            with contextlib.suppress(Exception):
                path = directory / f"{prefix}-{name}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"screenshot: {path}")
        raise


def wait_text(page: Any, selector: str, text: str) -> None:
    """Wait until the element ``selector`` is shown and its text contains ``text``."""
    page.wait_for_function(
        "([sel, text]) => { const n = document.querySelector(sel);"
        " return n && !n.hidden && n.textContent.includes(text); }",
        arg=[selector, text],
        timeout=TIMEOUT_MS,
    )


def get_json(page: Any, base_url: str, path: str) -> Any:
    """GET ``path`` with the page's session; it must answer 200."""
    response = page.request.get(f"{base_url}{path}")
    assert response.status == 200, response.text()
    return response.json()


@contextlib.contextmanager
def running_demo_hub(
    var_dir: Path,
    *,
    before_start: Callable[[dict[str, str]], None] | None = None,
    **env_extra: str,
) -> Iterator[HubProcess]:
    """A daphne process on the embedded default with the demo seeded (operator1,
    operator2, coordinator, admin; password "demo").  ``before_start`` gets the environment
    after the seed, to add a test's own rows; ``env_extra`` adds settings."""
    env = hub_env(None, None, HUB_VAR_DIR=str(var_dir), HUB_DEMO="1", **env_extra)
    migrate(env)
    manage(env, "demo_seed")
    if before_start is not None:
        before_start(env)
    with HubProcess(env, log_dir=var_dir) as hub:
        yield hub
