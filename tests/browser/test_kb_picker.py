"""The knowledge-base picker in a real browser: operator1 opens Ana's conversation, types
``/card`` in the composer, moves through the ranked list with the arrow keys, picks the
reply with Enter, edits the rendered text and sends it.  No JavaScript error on the page."""

from __future__ import annotations

import pytest

from tests.browser.support import FrameLog, PageErrors, launch_chromium, sign_in

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1280, "height": 800}
RENDERED_START = "I'm sorry about that, Ana. For your safety the card was blocked"


def test_operator_picks_a_saved_reply_with_the_keyboard_and_sends_it(demo_hub):
    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "operator1")
        frames = FrameLog(page)
        sign_in(page, demo_hub.http, "operator1")
        page.click("#conv-list button.conv >> text=Ana García")
        page.locator("#message-list .msg-in", has_text="card was blocked").wait_for(
            timeout=TIMEOUT_MS
        )

        composer = page.locator("#composer-text")
        composer.focus()
        composer.press_sequentially("/card", delay=40)
        options = page.locator("#kb-list [role=option]")
        options.first.wait_for(timeout=TIMEOUT_MS)
        assert composer.get_attribute("aria-expanded") == "true"
        # Ana's conversation is a payments query in English: the payments replies in English
        # whose shortcut starts with /card, in the coordinators' order.
        shortcuts = [
            s.strip() for s in page.locator("#kb-list .kb-option-shortcut").all_text_contents()
        ]
        assert shortcuts[:2] == ["/card-blocked", "/card-replacement"], shortcuts
        assert options.first.get_attribute("aria-selected") == "true"

        # The arrows move the choice (and wrap); the composer stays focused throughout.
        composer.press("ArrowDown")
        assert options.nth(1).get_attribute("aria-selected") == "true"
        assert composer.get_attribute("aria-activedescendant") == "kb-opt-1"
        composer.press("ArrowUp")
        assert options.first.get_attribute("aria-selected") == "true"

        # Enter inserts the reply rendered for this conversation, ready to edit.
        composer.press("Enter")
        page.wait_for_function(
            "() => document.getElementById('composer-text').value.startsWith(\"I'm sorry\")",
            timeout=TIMEOUT_MS,
        )
        assert page.locator("#kb-picker").is_hidden()
        assert composer.get_attribute("aria-expanded") == "false"
        text = composer.input_value()
        assert text.startswith(RENDERED_START), text
        assert "{{" not in text

        # The operator edits it, then Enter sends it.
        composer.press("End")
        composer.press_sequentially(" Thanks!", delay=10)
        composer.press("Enter")
        sent = text + " Thanks!"
        page.locator("#message-list .msg-out:not(.msg-pending)", has_text="Thanks!").wait_for(
            timeout=TIMEOUT_MS
        )
        assert page.locator("#message-list .msg-out .bubble-text").last.text_content() == sent
        assert composer.input_value() == ""

        kinds = frames.types_sent()
        assert "kb.search" in kinds and "kb.render" in kinds
        # Debounced: far fewer searches than keystrokes.
        assert kinds.count("kb.search") < len("/card")
        escape_check(page, composer, options)
    assert errors.errors == []


def escape_check(page, composer, options) -> None:
    """Escape closes the list and leaves the typed text alone."""
    composer.press_sequentially("/tarjeta", delay=20)
    options.first.wait_for(timeout=TIMEOUT_MS)
    composer.press("Escape")
    assert page.locator("#kb-picker").is_hidden()
    assert composer.input_value() == "/tarjeta"
