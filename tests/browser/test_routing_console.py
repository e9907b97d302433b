"""Routing in the console, in a real browser against a real daphne with the demo seeded.

One story, because each step starts from the state the previous one left:

1. The coordinator transfers Chen Li (Follow-up) from operator1 to operator2: operator1's
   list loses the conversation and operator2's gains it, live, without a reload.
2. operator1 closes Ana García (Payments) with the keyboard, through the resolution dialog,
   which offers the reasons of her type and the general ones, never another type's.
3. operator2 steps away; the admin previews the derivation of all of their conversations
   (spread): Chen can go to operator1 (Follow-up), Ben (Claims, which only operator2
   serves) to the queue.  Confirming moves both; every console follows live.
4. With nobody online, a new customer waits in the queue and gets the hub's position
   message, which the console shows as the bank's, not as an operator's reply.

A second test covers a close refused with ``resolution_required``.

demo_seed: operator1 "Omar One" serves Payments and Follow-up and holds Ana (Payments) and
Chen (Follow-up); operator2 "Olga Two" serves Claims and Follow-up and holds Ben (Claims).
No page may log a JavaScript error.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from tests.browser.support import FrameLog, PageErrors, launch_chromium, sign_in

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1280, "height": 800}
OMAR = "Omar One"
OLGA = "Olga Two"


def _row(page: Any, name: str) -> Any:
    return page.locator("#conv-list button.conv", has_text=name)


def _option_value(page: Any, select: str, text: str) -> str:
    value = page.locator(f"{select} option", has_text=text).first.get_attribute("value")
    assert value, f"no option {text!r} in {select}"
    return value


def _sent(frames: FrameLog, frame_type: str) -> list[dict[str, Any]]:
    return [f for f in frames.frames_sent() if f.get("type") == frame_type]


def _inside_viewport(page: Any, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["y"] >= 0
    assert box["x"] + box["width"] <= VIEWPORT["width"]
    assert box["y"] + box["height"] <= VIEWPORT["height"]


def test_transfer_close_with_reason_and_batch_derivation(demo_hub):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:

        def console(username: str) -> tuple[Any, FrameLog]:
            page = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), username)
            frames = FrameLog(page)
            sign_in(page, base, username)
            return page, frames

        op1, op1_frames = console("operator1")
        op2, _ = console("operator2")
        coord, coord_frames = console("coordinator")
        admin, admin_frames = console("admin")

        # Each row shows its query type; plain operators get no routing controls.
        _row(op1, "Chen Li").wait_for(timeout=TIMEOUT_MS)
        assert _row(op1, "Ana García").locator(".type-badge").text_content() == "Payments"
        assert _row(op1, "Chen Li").locator(".type-badge").text_content() == "Follow-up"
        _row(op2, "Ben Müller").wait_for(timeout=TIMEOUT_MS)
        assert _row(op2, "Ben Müller").locator(".type-badge").text_content() == "Claims"
        assert op1.is_hidden("#derive-open")
        _row(op1, "Ana García").click()
        op1.wait_for_selector("#type-field:not([hidden])", timeout=TIMEOUT_MS)
        assert op1.is_hidden("#transfer-open")

        # --- 1. the coordinator transfers Chen to operator2 -----------------------------
        _row(coord, "Chen Li").click()
        coord.wait_for_selector("#transfer-open:not([hidden])", timeout=TIMEOUT_MS)
        assert coord.is_hidden("#derive-open")  # batch derivation is the admin's
        coord.click("#transfer-open")
        coord.wait_for_selector("#transfer-dialog[open]")
        _inside_viewport(coord, "#transfer-dialog")
        assert coord.evaluate("document.activeElement.id") == "transfer-target"
        # Offered: online operators who serve Follow-up (not the current holder) and the queue.
        offered = coord.locator("#transfer-target option:not([disabled])").all_text_contents()
        assert any(OLGA in text for text in offered)
        assert not any(OMAR in text for text in offered)
        assert any("queue" in text for text in offered)
        # Coordinators cannot force beyond capacity.
        assert coord.is_hidden("#transfer-force-field")
        olga_id = _option_value(coord, "#transfer-target", OLGA)
        coord.select_option("#transfer-target", olga_id)
        coord.fill("#transfer-note", "Customer asked for Olga")
        coord.click("#transfer-confirm")
        coord.wait_for_selector("#transfer-dialog", state="hidden", timeout=TIMEOUT_MS)
        _row(coord, "Chen Li").locator(".conv-status", has_text=OLGA).wait_for(timeout=TIMEOUT_MS)
        (transfer,) = _sent(coord_frames, "conversation.transfer")
        assert transfer["to_operator_id"] == int(olga_id)
        assert transfer["note"] == "Customer asked for Olga"
        assert "force" not in transfer

        # Both operators' consoles follow live.
        _row(op1, "Chen Li").wait_for(state="detached", timeout=TIMEOUT_MS)
        op1.locator("#notices .notice-info", has_text="Chen Li was moved").wait_for(
            timeout=TIMEOUT_MS
        )
        chen_op2 = _row(op2, "Chen Li")
        chen_op2.wait_for(timeout=TIMEOUT_MS)
        assert chen_op2.locator(".type-badge").text_content() == "Follow-up"
        chen_op2.click()
        op2.locator("#message-list .msg-in", has_text="daily transfer limit").wait_for(
            timeout=TIMEOUT_MS
        )
        assert op2.is_visible("#composer")
        # The change of hands is on the conversation's timeline, with who and why.
        moved = op2.locator("#message-list .msg-timeline", has_text="Transferred from")
        moved.wait_for(timeout=TIMEOUT_MS)
        assert "Customer asked for Olga" in moved.text_content()

        # --- 2. operator1 closes Ana with a reason, by keyboard ----------------------------
        op1.focus("#close-conv")
        op1.keyboard.press("Enter")
        op1.wait_for_selector("#close-dialog[open]")
        _inside_viewport(op1, "#close-dialog")
        assert op1.evaluate("document.activeElement.id") == "close-reason"
        reasons = op1.locator("#close-reason option").all_text_contents()
        assert "Card unblocked or replaced" in reasons  # Payments
        assert "Resolved in the chat" in reasons  # every type
        assert "Claim registered" not in reasons  # Claims only
        assert "Status given" not in reasons  # Follow-up only
        # Escape cancels and gives the focus back.
        op1.keyboard.press("Escape")
        op1.wait_for_selector("#close-dialog", state="hidden")
        assert op1.evaluate("document.activeElement.id") == "close-conv"
        op1.keyboard.press("Enter")
        op1.wait_for_selector("#close-dialog[open]")
        # Submitting without a reason is refused in the page, nothing is sent.
        op1.keyboard.press("Tab")  # Cancel
        op1.keyboard.press("Tab")  # Close conversation
        assert op1.evaluate("document.activeElement.id") == "close-confirm"
        op1.keyboard.press("Enter")
        op1.locator("#close-error", has_text="Choose a resolution reason").wait_for()
        assert _sent(op1_frames, "conversation.close") == []
        assert op1.evaluate("document.activeElement.id") == "close-reason"
        op1.select_option("#close-reason", label="Card unblocked or replaced")
        op1.keyboard.press("Tab")
        op1.keyboard.press("Tab")
        op1.keyboard.press("Enter")
        op1.wait_for_selector("#close-dialog", state="hidden", timeout=TIMEOUT_MS)
        _row(op1, "Ana García").wait_for(state="detached", timeout=TIMEOUT_MS)
        op1.locator("#thread-meta", has_text="Closed: Card unblocked or replaced").wait_for(
            timeout=TIMEOUT_MS
        )
        (close,) = _sent(op1_frames, "conversation.close")
        assert close["resolution_id"] == int(
            _option_value(op1, "#close-reason", "Card unblocked or replaced")
        )
        _row(coord, "Ana García").wait_for(state="detached", timeout=TIMEOUT_MS)

        # --- 3. operator2 is away: the admin derives all of their conversations -----------
        op2.select_option("#presence", "away")
        op2.wait_for_selector("#presence[aria-busy=false]", timeout=TIMEOUT_MS)
        admin.wait_for_selector("#derive-open:not([hidden])", timeout=TIMEOUT_MS)
        admin.click("#derive-open")
        admin.wait_for_selector("#derive-dialog[open]")
        _inside_viewport(admin, "#derive-dialog")
        assert admin.is_disabled("#derive-confirm")
        olga_option = admin.locator("#derive-from option", has_text=OLGA)
        olga_option.filter(has_text="away").wait_for(state="attached", timeout=TIMEOUT_MS)
        admin.select_option("#derive-from", _option_value(admin, "#derive-from", OLGA))
        assert admin.input_value("#derive-to") == "spread"
        admin.click("#derive-preview")
        result = admin.locator("#derive-result")
        result.locator(".derive-result-title", has_text="2 conversations of Olga Two").wait_for(
            timeout=TIMEOUT_MS
        )
        omar_id = _option_value(admin, "#derive-to", OMAR)
        targets = {
            li.get_attribute("data-target"): (
                li.locator(".derive-target-name").text_content(),
                li.locator(".derive-target-count").text_content(),
            )
            for li in result.locator(".derive-target").all()
        }
        assert targets == {
            omar_id: (OMAR, "1"),
            "queue": ("Back to the queue (nobody free serves the type)", "1"),
        }
        # Nothing moved yet.
        assert _row(op2, "Ben Müller").count() == 1
        assert admin.text_content("#derive-confirm") == "Confirm: move 2"
        admin.click("#derive-confirm")
        result.locator(".derive-result-title", has_text="Done: 2 conversations moved").wait_for(
            timeout=TIMEOUT_MS
        )
        assert admin.is_hidden("#derive-confirm")
        assert admin.text_content("#derive-cancel") == "Done"
        assert [f["type"] for f in admin_frames.frames_sent() if "derivation" in f["type"]] == [
            "derivation.preview",
            "derivation.run",
        ]
        admin.click("#derive-cancel")
        admin.wait_for_selector("#derive-dialog", state="hidden")

        # Every console follows: operator2 loses both, operator1 gets Chen back, supervisors
        # see Ben waiting in the queue.
        _row(op2, "Ben Müller").wait_for(state="detached", timeout=TIMEOUT_MS)
        _row(op2, "Chen Li").wait_for(state="detached", timeout=TIMEOUT_MS)
        op2.locator("#notices .notice-info", has_text="2 conversations were moved").wait_for(
            timeout=TIMEOUT_MS
        )
        # The open thread stays readable but can no longer be answered.
        assert op2.is_hidden("#composer")
        assert "moved away from you" in op2.text_content("#thread-banner")
        _row(op1, "Chen Li").wait_for(timeout=TIMEOUT_MS)
        for page in (coord, admin):
            _row(page, "Ben Müller").locator(".conv-status", has_text="In queue").wait_for(
                timeout=TIMEOUT_MS
            )
            _row(page, "Chen Li").locator(".conv-status", has_text=OMAR).wait_for(
                timeout=TIMEOUT_MS
            )
        coord.locator("#notices .notice-info", has_text="Derivation finished").wait_for(
            timeout=TIMEOUT_MS
        )

        # --- 4. the hub's own queue message is shown as the bank's ---------------------------
        # operator2 is away: with operator1 offline nobody takes new conversations.
        op1.select_option("#presence", "offline")
        op1.wait_for_selector("#presence[aria-busy=false]", timeout=TIMEOUT_MS)
        marker = uuid.uuid4().hex[:8]
        customer_name = f"Eve {marker}"
        customer = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "customer")
        customer.goto(f"{base}/webchat/")
        customer.click("[data-hub-webchat] button.launcher")
        customer.fill("[data-hub-webchat] .name input", customer_name)
        customer.fill("[data-hub-webchat] textarea", f"Any news on my request? {marker}")
        customer.press("[data-hub-webchat] textarea", "Enter")
        eve = _row(coord, customer_name)
        eve.wait_for(timeout=TIMEOUT_MS)
        eve.locator(".conv-status", has_text="In queue").wait_for(timeout=TIMEOUT_MS)
        assert eve.locator(".type-badge").text_content() == "Follow-up"
        eve.locator(".conv-preview", has_text="Bank: ").wait_for(timeout=TIMEOUT_MS)
        eve.click()
        system = coord.locator("#message-list .msg-system")
        system.wait_for(timeout=TIMEOUT_MS)
        assert "in the queue" in system.locator(".bubble-text").text_content()
        assert system.locator(".bubble-meta").text_content().startswith("Bank")
        assert coord.locator("#message-list .msg-in", has_text=marker).count() == 1

        # A page whose widget is set to a query type (data-type) starts conversations of it.
        claimant_name = f"Finn {marker}"
        claimant = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "claimant")
        claimant.goto(f"{base}/webchat/?type=claims")
        claimant.click("[data-hub-webchat] button.launcher")
        claimant.fill("[data-hub-webchat] .name input", claimant_name)
        claimant.fill("[data-hub-webchat] textarea", f"My card was charged twice {marker}")
        claimant.press("[data-hub-webchat] textarea", "Enter")
        finn = _row(coord, claimant_name)
        finn.wait_for(timeout=TIMEOUT_MS)
        assert finn.locator(".type-badge").text_content() == "Claims"

        for page in (op1, op2, coord, admin):
            assert page.locator("#notices .notice-error").count() == 0

    assert errors.errors == [], "\n".join(errors.errors)


def test_close_shows_the_servers_allowed_reasons_when_the_page_had_none(demo_hub):
    """The page's list of reasons can be out of date (a coordinator added one since): the
    server refuses the close with ``resolution_required`` and its allowed list, and the
    dialog offers exactly that list.  Chen Li is operator1's in the seed and after the story
    above alike."""
    errors = PageErrors()

    def without_reasons(route: Any) -> None:
        server = route.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str) and '"routing_options"' in message:
                frame = json.loads(message)
                frame["resolutions"] = []
                message = json.dumps(frame)
            route.send(message)

        server.on_message(from_server)
        route.on_message(server.send)

    with launch_chromium() as browser:
        op1 = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "operator1")
        op1.route_web_socket(re.compile(r"/ws/console/"), without_reasons)
        frames = FrameLog(op1)
        sign_in(op1, demo_hub.http, "operator1")
        _row(op1, "Chen Li").click()
        op1.wait_for_selector("#type-field:not([hidden])", timeout=TIMEOUT_MS)
        op1.click("#close-conv")
        op1.wait_for_selector("#close-dialog[open]")
        # No reasons known: the dialog offers a plain close.
        assert op1.is_hidden("#close-reason-field")
        op1.click("#close-confirm")
        error = op1.locator("#close-error")
        error.locator("li").first.wait_for(timeout=TIMEOUT_MS)
        allowed = error.locator("li").all_text_contents()
        assert "Status given" in allowed  # Follow-up
        assert "Resolved in the chat" in allowed  # every type
        assert "Claim registered" not in allowed
        assert op1.is_visible("#close-reason")
        assert op1.evaluate("document.activeElement.id") == "close-reason"
        offered = op1.locator("#close-reason option:not([value=''])").all_text_contents()
        assert sorted(offered) == sorted(allowed)
        op1.select_option("#close-reason", label="Status given")
        op1.click("#close-confirm")
        op1.wait_for_selector("#close-dialog", state="hidden", timeout=TIMEOUT_MS)
        _row(op1, "Chen Li").wait_for(state="detached", timeout=TIMEOUT_MS)
        closes = _sent(frames, "conversation.close")
        assert "resolution_id" not in closes[0]
        assert closes[1]["resolution_id"] == int(
            _option_value(op1, "#close-reason", "Status given")
        )
        assert op1.locator("#notices .notice-error").count() == 0
    assert errors.errors == [], "\n".join(errors.errors)
