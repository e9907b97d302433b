"""The web chat widget in a real browser: a new visitor's first message gets the type menu
(written by the hub in the same transaction) on the page, live — no reload — once, as a
bank message with its lines kept; answering it works on the same socket.  Against the
seeded demo on the embedded default with the type menu turned on.  No JavaScript error.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.support import (
    TIMEOUT_MS,
    WIDE,
    PageErrors,
    launch_chromium,
    running_demo_hub,
    screenshots_on_failure,
)
from tests.harness import HubProcess, manage

pytestmark = pytest.mark.e2e

MENU_ON = """
from routing.services import routing_settings_get
policy = routing_settings_get()
policy.type_menu_enabled = True
policy.save()
"""
WIDGET = "[data-hub-webchat]"


@pytest.fixture(scope="module")
def menu_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with running_demo_hub(
        tmp_path_factory.mktemp("webchat-menu"),
        before_start=lambda env: manage(env, "shell", "-c", MENU_ON),
    ) as hub:
        yield hub


def test_the_type_menu_shows_live_after_the_first_message(menu_hub, tmp_path):
    errors = PageErrors()
    with launch_chromium() as browser:
        customer = errors.watch(browser.new_context(viewport=WIDE).new_page(), "customer")
        with screenshots_on_failure({"customer": customer}, tmp_path, "webchat-menu"):
            customer.goto(f"{menu_hub.http}/webchat/")
            customer.click(f"{WIDGET} button.launcher")
            customer.fill(f"{WIDGET} .name input", "Maria Costa")
            customer.fill(f"{WIDGET} textarea", "Good morning")
            customer.press(f"{WIDGET} textarea", "Enter")
            customer.wait_for_selector(
                f"{WIDGET} .msg.mine:not(.pending) >> text=Good morning", timeout=TIMEOUT_MS
            )
            # No reload: the menu arrives on the socket that sent the first message.
            menu = customer.locator(f"{WIDGET} .msg:not(.mine)", has_text="How can we help you?")
            menu.wait_for(timeout=TIMEOUT_MS)
            lines = menu.locator(".bubble").inner_text().splitlines()
            assert lines[0] == "How can we help you? Reply with a number:"
            assert lines[1:] == ["1 Payments", "2 Follow-up", "3 Claims"]
            assert menu.locator(".meta").inner_text().startswith("Bank · ")

            # The answer and whatever follows it (e.g. the queue position) on the same page.
            customer.fill(f"{WIDGET} textarea", "3")
            customer.press(f"{WIDGET} textarea", "Enter")
            customer.wait_for_selector(
                f"{WIDGET} .msg.mine:not(.pending) >> text=3", timeout=TIMEOUT_MS
            )
            texts = customer.locator(f"{WIDGET} .msg .bubble").all_inner_texts()
            assert texts.count("Good morning") == 1 and texts.count("3") == 1
            assert sum(t.startswith("How can we help you?") for t in texts) == 1
    assert errors.unexpected() == []
