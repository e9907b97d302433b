"""The console and the web chat widget in a real browser: a customer writes on the demo bank
page, the assigned operator sees it live, answers, the customer sees the answer, the operator
closes the conversation; a supervisor watches read-only.  No page may log a JavaScript error.

List previews come from the snapshot's ``last_message`` and from live events: no console
sends ``conversation.history`` except for the conversation it opens.  The supervisor sees
operators by name.

operator2 goes offline first (through the console's presence selector), so the new
conversation can only be routed to operator1.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.browser.support import FrameLog, PageErrors, launch_chromium, sign_in

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1280, "height": 800}
# demo_seed: operator1 is "Omar One", operator2 "Olga Two"; each seeded conversation got a
# greeting from its operator, the newest message of the conversation.
OMAR = "Omar One"
ANA_GREETING = "Hello Ana, I'm looking into it now."


def test_customer_and_operator_talk_through_the_browser(demo_hub):
    base = demo_hub.http
    errors = PageErrors()
    marker = uuid.uuid4().hex[:8]
    customer_name = f"Dana {marker}"
    # Markup in user text must arrive as text, never as HTML.
    question = f"Card charged twice <img src=x onerror=window.__xss=1> ref {marker}"
    reply = f"I can see the double charge, refund on its way ({marker})."

    with launch_chromium() as browser:
        # operator2 signs in and goes offline: routing now has only operator1.
        op2 = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "operator2")
        sign_in(op2, base, "operator2")
        op2.select_option("#presence", "offline")
        op2.wait_for_selector("#presence[aria-busy=false]", timeout=TIMEOUT_MS)
        assert op2.input_value("#presence") == "offline"

        # operator1 sees their own conversations from the seed.
        op1_context = browser.new_context(viewport=VIEWPORT)
        op1 = errors.watch(op1_context.new_page(), "operator1")
        op1_frames = FrameLog(op1)
        sign_in(op1, base, "operator1")
        assert op1.text_content("#list-title") == "My conversations"
        op1.wait_for_selector("#conv-list button.conv >> text=Ana García", timeout=TIMEOUT_MS)
        assert op1.locator("#conv-list button.conv").count() == 2
        assert op1.text_content("#conn").strip() == "Live"
        # The preview is the snapshot's last message (the operator's own greeting).
        ana_op1 = op1.locator("#conv-list button.conv", has_text="Ana García")
        assert ana_op1.locator(".conv-preview").text_content() == "You: " + ANA_GREETING
        assert not op1.is_visible("#list-truncated")

        # The supervisor watches everything, and sees who handles each conversation.
        sup = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "coordinator")
        sup_frames = FrameLog(sup)
        sign_in(sup, base, "coordinator")
        assert sup.text_content("#list-title") == "All open conversations"
        sup.wait_for_selector("#conv-list button.conv >> text=Ben Müller", timeout=TIMEOUT_MS)
        ana_sup = sup.locator("#conv-list button.conv", has_text="Ana García")
        assert ana_sup.locator(".conv-status").text_content() == OMAR
        assert ana_sup.locator(".conv-preview").text_content() == "Reply: " + ANA_GREETING
        assert "Operator #" not in sup.text_content("#conv-list")

        # No preview cost a request: give a lazy fetcher time to show itself, then check.
        sup.wait_for_timeout(600)
        assert op1_frames.history_requests() == []
        assert sup_frames.history_requests() == []

        # A customer opens the bank page and writes through the widget.
        customer = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "customer")
        customer_frames = FrameLog(customer)
        customer.goto(f"{base}/webchat/")
        customer.click("[data-hub-webchat] button.launcher")
        customer.fill("[data-hub-webchat] .name input", customer_name)
        customer.fill("[data-hub-webchat] textarea", question)
        customer.press("[data-hub-webchat] textarea", "Enter")
        customer.wait_for_selector(
            "[data-hub-webchat] .msg.mine:not(.pending) >> text=ref " + marker, timeout=TIMEOUT_MS
        )

        # It appears live in operator1's list, unread, without a reload.
        row = op1.locator("#conv-list button.conv", has_text=customer_name)
        row.wait_for(timeout=TIMEOUT_MS)
        assert row.locator(".badge-unread").text_content() == "1"
        assert "Waiting" in row.locator(".wait").text_content()
        # The event brought the preview (markup as text).
        assert row.locator(".conv-preview").text_content() == question
        conversation_id = row.get_attribute("data-id")
        # ... and in the supervisor's list, assigned to operator1 by name.
        sup_row = sup.locator("#conv-list button.conv", has_text=customer_name)
        sup_row.wait_for(timeout=TIMEOUT_MS)
        sup_row.locator(".conv-status", has_text=OMAR).wait_for(timeout=TIMEOUT_MS)
        assert sup_row.locator(".conv-preview").text_content() == question

        # Opening it loads the history and marks it read.
        row.click()
        op1.locator("#message-list .msg-in", has_text=f"ref {marker}").wait_for(timeout=TIMEOUT_MS)
        assert op1.locator("#message-list .msg-in .bubble-text").last.text_content() == question
        row.locator(".badge-unread").wait_for(state="hidden", timeout=TIMEOUT_MS)

        # The operator answers (Enter sends); the reply is confirmed, not left pending.
        op1.fill("#composer-text", reply)
        op1.press("#composer-text", "Enter")
        op1.locator("#message-list .msg-out:not(.msg-pending)", has_text=reply).wait_for(
            timeout=TIMEOUT_MS
        )
        assert op1.input_value("#composer-text") == ""

        # The customer sees the answer live.
        customer.locator("[data-hub-webchat] .msg:not(.mine)", has_text=reply).wait_for(
            timeout=TIMEOUT_MS
        )

        # The supervisor sees the whole conversation, read-only.
        sup_row.locator(".conv-preview", has_text=reply).wait_for(timeout=TIMEOUT_MS)
        sup_row.click()
        sup.locator("#message-list .msg-out", has_text=reply).wait_for(timeout=TIMEOUT_MS)
        assert not sup.is_visible("#composer")
        assert not sup.is_visible("#close-conv")
        assert sup.is_visible("#thread-banner")
        assert f"({OMAR})" in sup.text_content("#thread-banner")
        assert OMAR in sup.text_content("#thread-meta")

        # The operator closes it with a resolution reason; it leaves their list and the
        # customer is told.
        op1.click("#close-conv")
        op1.select_option("#close-reason", label="Resolved in the chat")
        op1.click("#close-confirm")
        row.wait_for(state="detached", timeout=TIMEOUT_MS)
        op1.wait_for_selector("#thread-banner:not([hidden])", timeout=TIMEOUT_MS)
        customer.locator("[data-hub-webchat] .note", has_text="ended").wait_for(timeout=TIMEOUT_MS)

        # Markup stayed text everywhere.
        for page in (op1, sup, customer):
            assert page.evaluate("() => window.__xss") is None
        assert op1.locator("#message-list img").count() == 0

        # History was fetched only for the conversation each console opened.
        assert op1_frames.history_requests() == [conversation_id]
        assert sup_frames.history_requests() == [conversation_id]

        # Each message went out exactly once, with a client_id, and nothing needed a resume.
        op1_sent = [json.loads(f) for f in op1_frames.sent]
        sends = [f for f in op1_sent if f.get("type") == "message.send"]
        assert len(sends) == 1 and sends[0]["client_id"] and sends[0]["text"] == reply
        assert "resume" not in op1_frames.types_sent()
        customer_sends = [json.loads(f) for f in customer_frames.sent if '"message.send"' in f]
        assert len(customer_sends) == 1
        assert customer_sends[0]["name"] == customer_name

        # No notices were raised on the operator's console.
        assert op1.locator("#notices .notice-error").count() == 0

    assert errors.errors == [], "\n".join(errors.errors)
