"""Internal notes in a real browser: operator1 switches the composer to Note mode (Alt+O),
writes a note on a customer's conversation, and the coordinator watching the same
conversation sees it appear live as an "Internal note"; the coordinator answers with a note
of their own ("Add note"), which operator1 sees live.  The customer's web chat page never
shows either note, live or after a reload, while the reply sent after them arrives.  The
shortcut list names Alt+O.  No page logs a JavaScript error.

operator2 goes offline first, so the new conversation can only be routed to operator1.
"""

from __future__ import annotations

import uuid

import pytest

from tests.browser.support import (
    PageErrors,
    launch_chromium,
    screenshots_on_failure,
    sign_in,
)

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1280, "height": 800}
NOTE_LABEL = "Internal note — only staff see this"


def test_notes_reach_staff_live_and_never_the_customer(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    marker = uuid.uuid4().hex[:8]
    customer_name = f"Nora {marker}"
    question = f"Did my transfer go through? ({marker})"
    note = f"Transfer held by compliance, do not promise a date ({marker})"
    reply_note = f"Compliance says tomorrow morning ({marker})"
    reply = f"Your transfer is being checked, we will write to you ({marker})."

    with launch_chromium() as browser:
        pages = {}
        with screenshots_on_failure(pages, tmp_path, "notes"):
            op2 = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "operator2")
            pages["operator2"] = op2
            sign_in(op2, base, "operator2")
            op2.select_option("#presence", "offline")
            op2.wait_for_selector("#presence[aria-busy=false]", timeout=TIMEOUT_MS)

            op1 = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "operator1")
            pages["operator1"] = op1
            sign_in(op1, base, "operator1")
            sup = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "coordinator")
            pages["coordinator"] = sup
            sign_in(sup, base, "coordinator")

            customer = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "customer")
            pages["customer"] = customer
            customer.goto(f"{base}/webchat/")
            customer.click("[data-hub-webchat] button.launcher")
            customer.fill("[data-hub-webchat] .name input", customer_name)
            customer.fill("[data-hub-webchat] textarea", question)
            customer.press("[data-hub-webchat] textarea", "Enter")
            customer.wait_for_selector(
                f"[data-hub-webchat] .msg.mine:not(.pending) >> text={marker}",
                timeout=TIMEOUT_MS,
            )

            # Both staff open the conversation; the coordinator only watches.
            row = op1.locator("#conv-list button.conv", has_text=customer_name)
            row.wait_for(timeout=TIMEOUT_MS)
            row.click()
            op1.locator("#message-list .msg-in", has_text=marker).wait_for(timeout=TIMEOUT_MS)
            sup_row = sup.locator("#conv-list button.conv", has_text=customer_name)
            sup_row.wait_for(timeout=TIMEOUT_MS)
            sup_row.click()
            sup.locator("#message-list .msg-in", has_text=marker).wait_for(timeout=TIMEOUT_MS)
            assert not sup.is_visible("#composer")
            assert sup.is_visible("#note-open")

            # Alt+O switches operator1's composer to Note mode, clearly marked.
            op1.focus("#composer-text")
            op1.keyboard.press("Alt+KeyO")
            op1.wait_for_selector("#composer.note-mode", timeout=TIMEOUT_MS)
            assert op1.get_attribute("#note-toggle", "aria-pressed") == "true"
            assert op1.is_visible("#composer-note-label")
            assert NOTE_LABEL in op1.text_content("#composer-note-label")
            assert op1.text_content("#send").strip() == "Save note"
            assert op1.evaluate("document.activeElement.id") == "composer-text"
            op1.fill("#composer-text", note)
            op1.press("#composer-text", "Enter")
            mine = op1.locator("#message-list .msg-note:not(.msg-pending)", has_text=note)
            mine.wait_for(timeout=TIMEOUT_MS)
            assert NOTE_LABEL in mine.text_content()
            assert op1.locator("#message-list .msg-out", has_text=note).count() == 0
            assert op1.input_value("#composer-text") == ""

            # The coordinator's console shows it live, as an internal note by Omar.
            seen = sup.locator("#message-list .msg-note", has_text=note)
            seen.wait_for(timeout=TIMEOUT_MS)
            assert NOTE_LABEL in seen.text_content()
            assert "Omar One" in seen.locator(".bubble-meta").text_content()

            # The coordinator adds a note of their own; operator1 sees it live.
            sup.click("#note-open")
            sup.wait_for_selector("#composer.note-mode", timeout=TIMEOUT_MS)
            sup.fill("#composer-text", reply_note)
            sup.click("#send")
            sup.locator("#message-list .msg-note:not(.msg-pending)", has_text=reply_note).wait_for(
                timeout=TIMEOUT_MS
            )
            op1.locator("#message-list .msg-note", has_text=reply_note).wait_for(timeout=TIMEOUT_MS)

            # Back to replies (Alt+O again): the reply reaches the customer, the notes never.
            op1.focus("#composer-text")
            op1.keyboard.press("Alt+KeyO")
            op1.wait_for_selector("#composer:not(.note-mode)", timeout=TIMEOUT_MS)
            assert op1.text_content("#send").strip() == "Send"
            op1.fill("#composer-text", reply)
            op1.press("#composer-text", "Enter")
            op1.locator("#message-list .msg-out:not(.msg-pending)", has_text=reply).wait_for(
                timeout=TIMEOUT_MS
            )
            widget = "[data-hub-webchat]"
            customer.locator(f"{widget} .msg:not(.mine)", has_text=reply).wait_for(
                timeout=TIMEOUT_MS
            )
            page_text = customer.text_content(widget)
            assert note not in page_text and reply_note not in page_text
            assert "compliance" not in page_text.lower()

            # Reopening the page reads the history from the server: still no note.
            customer.reload()
            # The panel stays open across page loads (per tab): open it only if it is not.
            launcher = customer.locator(f"{widget} button.launcher")
            launcher.wait_for(timeout=TIMEOUT_MS)
            if launcher.get_attribute("aria-expanded") != "true":
                launcher.click()
            customer.locator(f"{widget} .msg:not(.mine)", has_text=reply).wait_for(
                timeout=TIMEOUT_MS
            )
            assert "compliance" not in customer.text_content(widget).lower()

            # A fresh load of the conversation in the console brings the notes from history.
            op1.reload()
            op1.wait_for_selector("#conn[data-state=live]", timeout=TIMEOUT_MS)
            op1.locator("#conv-list button.conv", has_text=customer_name).click()
            op1.locator("#message-list .msg-note", has_text=note).wait_for(timeout=TIMEOUT_MS)
            op1.locator("#message-list .msg-note", has_text=reply_note).wait_for(timeout=TIMEOUT_MS)

            # The shortcut list names the note shortcut.
            op1.locator("#messages").focus()
            op1.keyboard.press("Shift+?")
            op1.wait_for_selector("#keys-dialog[open]", timeout=TIMEOUT_MS)
            assert "Internal note mode" in op1.text_content("#keys-dialog")
            op1.keyboard.press("Escape")

        assert errors.unexpected() == []
