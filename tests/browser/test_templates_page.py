"""The coordinators' WhatsApp-templates page (/coordinator/templates/) in a real browser,
against the seeded demo (four approved templates: claim_follow_up and
payment_inquiry_update in es and en).

A coordinator writes a template: the server's preview counts the placeholders (the example
fields appear), fills them with the examples and shows the buttons; a name WhatsApp would
refuse and a link button without an http(s) address are shown under their fields.  The
draft then goes through WhatsApp's review on the page: submitted (no longer editable), a
rejection without a reason refused under the reason, rejected with one, appealed, approved
— and operators then find it among the approved templates.  The history lists every step.
An edit saved by someone else meanwhile shows the conflict.  An operator is refused the
page.  No JavaScript error, at 1280x800 and at 400 px.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.support import (
    NARROW,
    TIMEOUT_MS,
    WIDE,
    PageErrors,
    launch_chromium,
    screenshots_on_failure,
    sign_in,
    sign_in_to,
    wait_text,
)

pytestmark = pytest.mark.e2e

PAGE = "/coordinator/templates/"
ALLOWED_HTTP = (400, 409)  # statuses the tests provoke on purpose


def open_page(page: Any, base: str, username: str) -> None:
    sign_in_to(page, base, PAGE, username, ready="#templates-main[data-ready=true]")


def approved_names(page: Any, base: str) -> list[str]:
    response = page.request.get(f"{base}/api/hsm/templates/?status=approved")
    assert response.status == 200, response.text()
    return [f"{t['name']}:{t['language']}" for t in response.json()["templates"]]


def move(page: Any, label: str, status: str) -> None:
    page.get_by_role("button", name=label).click()
    wait_text(page, "#editor-status", status)


def test_coordinator_writes_a_template_and_records_whatsapps_review(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=WIDE).new_page(), "coordinator")
        operator = errors.watch(browser.new_context(viewport=WIDE).new_page(), "operator1")
        admin = errors.watch(browser.new_context(viewport=WIDE).new_page(), "admin")
        pages = {"coordinator": page, "operator1": operator, "admin": admin}
        with screenshots_on_failure(pages, tmp_path, "templates"):
            open_page(page, base, "coordinator")
            open_page(admin, base, "admin")
            sign_in(operator, base, "operator1")
            assert "card_delivery:en" not in approved_names(operator, base)
            assert page.text_content("#status-tabs [data-count='approved']") == "4"
            page.click("#status-tabs [data-status='approved']")
            assert page.locator("#template-list li.item").count() == 4

            # A new template; the server's preview drives the example fields.
            page.keyboard.press("Alt+n")
            assert page.evaluate("document.activeElement.id") == "tpl-name"
            page.fill("#tpl-name", "Card Delivery")
            page.fill("#tpl-language", "en")
            page.select_option("#tpl-category", "utility")
            page.fill("#tpl-header", "Your card {{1}}")
            page.fill("#tpl-body", "Hello {{1}}, your card ending {{2}} is on its way.")
            page.wait_for_selector(
                "#examples input[data-field='body_examples[1]']", timeout=TIMEOUT_MS
            )
            assert page.locator("#header-example-field").is_visible()
            page.fill("#tpl-header-example", "Visa Gold")
            page.fill("#examples input[data-field='body_examples[0]']", "Ana")
            page.fill("#examples input[data-field='body_examples[1]']", "1234")
            page.fill("#tpl-footer", "Demo Bank")
            wait_text(page, "#preview-body", "Hello Ana, your card ending 1234 is on its way.")
            assert page.text_content("#preview-header") == "Your card Visa Gold"
            wait_text(page, "#preview-footer", "Demo Bank")
            page.click("#add-url")
            page.fill("#buttons input[data-field='buttons[0].text']", "Track it")
            page.fill("#buttons input[data-field='buttons[0].url']", "ftp://bank.example/track")
            # The preview checks the parts as they are typed.
            wait_text(page, "#preview-problem", "buttons[0].url must be a fixed http://")

            # The server refuses the name first, with WhatsApp's rule and a suggestion.
            page.click("#template-save")
            page.wait_for_selector("#tpl-name-error:not([hidden])", timeout=TIMEOUT_MS)
            assert page.text_content("#tpl-name-error") == (
                "A template name holds only lower-case letters, digits and underscores, "
                "e.g. card_delivery."
            )
            assert page.get_attribute("#tpl-name", "aria-invalid") == "true"
            assert page.evaluate("document.activeElement.id") == "tpl-name"
            page.fill("#tpl-name", "card_delivery")
            # Then the link button, under its address.
            page.keyboard.press("Control+s")
            url_error = page.locator("#buttons [data-error-for='buttons[0].url']")
            url_error.wait_for(state="visible", timeout=TIMEOUT_MS)
            assert url_error.text_content().startswith(
                "buttons[0].url must be a fixed http:// or https:// address"
            )
            assert page.locator("#tpl-name-error").is_hidden()
            page.fill("#buttons input[data-field='buttons[0].url']", "https://bank.example/track")
            page.click("#template-save")
            wait_text(page, "#save-status", "Saved · version 1")
            assert page.text_content("#editor-status") == "Draft"
            assert "card_delivery created as a draft" in page.text_content("#staff-notices")
            wait_text(page, "#preview-buttons", "↗ Track it")

            # Through WhatsApp's review.
            move(page, "Submit to WhatsApp", "Submitted")
            assert page.is_disabled("#tpl-body") and page.is_disabled("#template-save")
            assert page.locator("#locked-hint").is_visible()
            page.get_by_role("button", name="WhatsApp rejected it…").click()
            assert page.evaluate("document.activeElement.id") == "rejection-reason"
            page.click("#reject-confirm")
            page.wait_for_selector("#rejection-reason-error:not([hidden])", timeout=TIMEOUT_MS)
            assert page.text_content("#rejection-reason-error") == (
                "A rejection needs the reason WhatsApp gave."
            )
            page.fill("#rejection-reason", "The example for {{2}} looks like a card number.")
            page.click("#reject-confirm")
            wait_text(page, "#editor-status", "Rejected")
            assert "looks like a card number" in page.text_content("#rejection-shown")
            assert "card_delivery:en" not in approved_names(operator, base)
            move(page, "Appeal (submit again unchanged)", "Submitted")
            move(page, "WhatsApp approved it", "Approved")
            assert "is now approved" in page.text_content("#staff-notices")
            # The approved list shows it, and operators can use it now.
            assert page.text_content("#status-tabs [data-count='approved']") == "5"
            assert page.locator("#template-list li.item", has_text="card_delivery").count() == 1
            assert "card_delivery:en" in approved_names(operator, base)
            template_id = page.evaluate(
                "document.querySelector('#template-list li.is-current').dataset.templateId"
            )
            rendered = operator.request.post(
                f"{base}/api/hsm/templates/{template_id}/render/",
                data={"parameters": ["Visa", "Ben", "9876"]},
                headers={"X-CSRFToken": csrf(operator)},
            )
            assert rendered.status == 200, rendered.text()
            assert rendered.json()["text"].startswith(
                "Your card Visa\n\nHello Ben, your card ending 9876"
            )

            # The history, newest first.
            page.wait_for_function(
                "() => document.querySelectorAll('#history li').length === 5", timeout=TIMEOUT_MS
            )
            assert page.locator("#history li strong").all_text_contents() == [
                "v5 · Submitted → Approved",
                "v4 · Rejected → Submitted",
                "v3 · Submitted → Rejected",
                "v2 · Draft → Submitted",
                "v1 · Created as a draft",
            ]
            assert "looks like a card number" in page.text_content("#history li:nth-child(3)")

            # The admin edits it meanwhile (back to draft); the coordinator's save conflicts.
            edited = admin.request.fetch(
                f"{base}/api/hsm/templates/{template_id}/",
                method="PATCH",
                data={"version": 5, "footer": "Demo Bank · Cards"},
                headers={"X-CSRFToken": csrf(admin)},
            )
            assert edited.status == 200, edited.text()
            page.fill("#tpl-footer", "Demo Bank · Card team")
            page.click("#template-save")
            page.wait_for_selector("#conflict:not([hidden])", timeout=TIMEOUT_MS)
            assert "They saved version 6 after you loaded version 5" in page.text_content(
                "#conflict"
            )
            page.click("#conflict-reload")
            wait_text(page, "#editor-status", "Draft")
            assert page.input_value("#tpl-footer") == "Demo Bank · Cards"
            assert "card_delivery:en" not in approved_names(operator, base)
        assert errors.unexpected(ALLOWED_HTTP) == []


def csrf(page: Any) -> str:
    return page.evaluate(
        "(document.querySelector('[data-csrf]') || {dataset: {}}).dataset.csrf || "
        "(document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || ''"
    )


def test_narrow_screen_and_an_operator_is_refused(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=NARROW).new_page(), "coordinator")
        with screenshots_on_failure({"coordinator": page}, tmp_path, "templates"):
            open_page(page, base, "coordinator")
            page.locator(
                "#template-list .item-open", has_text="payment_inquiry_update"
            ).first.click()
            wait_text(page, "#editor-status", "Approved")
            assert page.locator("#buttons .button-row").count() == 1
            assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
        operator = errors.watch(browser.new_context(viewport=WIDE).new_page(), "operator1")
        sign_in(operator, base, "operator1")
        response = operator.goto(f"{base}{PAGE}")
        assert response.status == 403
        assert operator.text_content("h1") == "No access to WhatsApp templates"
        assert operator.locator("#template-form").count() == 0
    assert [e for e in errors.unexpected(ALLOWED_HTTP) if "status of 403" not in e] == []
