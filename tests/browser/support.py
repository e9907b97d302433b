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
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


def sign_in(page: Any, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto(f"{base_url}/accounts/login/?next=/console/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    page.wait_for_selector("#conn[data-state=live]")
