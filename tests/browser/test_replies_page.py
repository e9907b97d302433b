"""The coordinators' knowledge-base page (/coordinator/replies/) in a real browser, against
the seeded demo (15 replies, /greeting first).

A coordinator writes a reply: the live preview fills the body for a sample customer and
shows the fallbacks; an unknown variable is refused by the server and shown under the body
with the offending characters selected; a shortcut already in use is shown under the
shortcut.  Once saved, an operator's knowledge-base search finds the reply.  An edit saved
by someone else meanwhile shows the conflict and reloads; the order changes with the
arrows; retiring takes the reply out of the operators' search.  An operator is refused the
page.  No JavaScript error, at 1280x800 and at 400 px.

Chromium logs every 4xx answer as a console error; the page asks for those on purpose
(validation, stale version), so exactly those lines are allowed.
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

PAGE = "/coordinator/replies/"
ALLOWED_HTTP = (400, 409)  # statuses the tests provoke on purpose


def open_page(page: Any, base: str, username: str) -> None:
    sign_in_to(page, base, PAGE, username, ready="#replies-main[data-ready=true]")


def api(page: Any, base: str, method: str, path: str, body: Any = None) -> Any:
    request = page.request
    if method == "GET":
        return request.get(f"{base}{path}")
    csrf = page.evaluate("document.getElementById('replies-main').dataset.csrf")
    return request.fetch(f"{base}{path}", method=method, data=body, headers={"X-CSRFToken": csrf})


def operator_search(page: Any, base: str, query: str) -> list[dict[str, Any]]:
    response = page.request.get(f"{base}/api/kb/replies/?q={query}")
    assert response.status == 200, response.text()
    return response.json()["replies"]


def test_coordinator_writes_edits_orders_and_retires_a_reply(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=WIDE).new_page(), "coordinator")
        operator = errors.watch(browser.new_context(viewport=WIDE).new_page(), "operator1")
        admin = errors.watch(browser.new_context(viewport=WIDE).new_page(), "admin")
        pages = {"coordinator": page, "operator1": operator, "admin": admin}
        with screenshots_on_failure(pages, tmp_path, "replies"):
            open_page(page, base, "coordinator")
            sign_in(operator, base, "operator1")
            open_page(admin, base, "admin")
            assert operator_search(operator, base, "mortgage") == []
            count = page.locator("#reply-list li.item").count()
            assert count >= 15
            assert (
                page.locator("#reply-list li.item").first.locator(".shortcut").text_content()
                == "/greeting"
            )

            # A new reply, with the keyboard shortcut; the preview asks the server.
            page.keyboard.press("Alt+n")
            assert page.evaluate("document.activeElement.id") == "reply-title"
            page.fill("#reply-title", "Mortgage rates")
            page.fill("#reply-shortcut", "Mortgage-Rates")
            page.fill("#reply-language", "en")
            page.locator("#reply-types label", has_text="Payments").locator("input").check()
            page.fill(
                "#reply-body",
                'Hello {{customer.first_name | "there"}}, our mortgage rates start at 3.1%. '
                "Your reference is {{customer.surname}}.",
            )
            wait_text(page, "#preview-problem", "Unknown variable 'customer.surname'")
            page.click("#reply-save")
            error = page.locator("#reply-body-error")
            error.wait_for(state="visible", timeout=TIMEOUT_MS)
            assert error.text_content().startswith(
                "Unknown variable 'customer.surname' at character 94. Known: customer.first_name,"
            )
            assert page.get_attribute("#reply-body", "aria-invalid") == "true"
            assert page.evaluate("document.activeElement.id") == "reply-body"
            selected = page.evaluate(
                "(() => { const b = document.getElementById('reply-body');"
                " return b.value.slice(b.selectionStart, b.selectionEnd); })()"
            )
            assert selected == "{{customer.surname}}"
            assert operator_search(operator, base, "mortgage") == []  # nothing saved

            # Fix it with the variable buttons: the preview fills Ana and the fallback.
            body = page.locator("#reply-body")
            body.fill(
                'Hello {{customer.first_name | "there"}}, our mortgage rates start at 3.1%. '
                "Your reference is "
            )
            body.press("End")
            page.click(".var-insert[data-variable='conversation.reference']")
            page.keyboard.type(".")
            wait_text(page, "#preview-text", "Hello Ana, our mortgage rates start at 3.1%.")
            assert page.text_content("#preview-text").endswith("Your reference is 5FBD0299.")
            assert page.text_content("#preview-empty").startswith("Hello there, our mortgage")
            assert page.locator("#preview-problem").is_hidden()

            # A shortcut another reply holds: the server's conflict, under the shortcut.
            page.fill("#reply-shortcut", "/greeting")
            page.keyboard.press("Control+s")
            page.wait_for_selector("#reply-shortcut-error:not([hidden])", timeout=TIMEOUT_MS)
            assert page.text_content("#reply-shortcut-error") == (
                "The shortcut /greeting is already used by another reply."
            )
            assert page.locator("#reply-body-error").is_hidden()
            page.fill("#reply-shortcut", "Mortgage-Rates")
            page.click("#reply-save")
            wait_text(page, "#save-status", "Saved · version 1")
            assert page.input_value("#reply-shortcut") == "/mortgage-rates"
            assert "operators find it with /mortgage-rates" in page.text_content("#staff-notices")
            assert page.locator("#reply-list li.item").count() == count + 1

            # The operator's search finds it, by word and by shortcut.
            found = operator_search(operator, base, "mortgage")
            assert [r["shortcut"] for r in found] == ["/mortgage-rates"]
            reply_id = found[0]["id"]
            assert operator_search(operator, base, "/mortg")[0]["id"] == reply_id

            # The admin saves an edit meanwhile; the coordinator's save meets the conflict.
            edited = api(
                admin,
                base,
                "PATCH",
                f"/api/kb/replies/{reply_id}/",
                {"version": 1, "title": "Mortgage rates 2027"},
            )
            assert edited.status == 200, edited.text()
            page.fill("#reply-title", "Mortgage rates today")
            page.click("#reply-save")
            page.wait_for_selector("#conflict:not([hidden])", timeout=TIMEOUT_MS)
            assert "They saved version 2 after you loaded version 1" in page.text_content(
                "#conflict"
            )
            assert page.evaluate("document.activeElement.id") == "conflict"
            page.click("#conflict-reload")
            page.wait_for_function(
                "() => document.getElementById('reply-title').value === 'Mortgage rates 2027'",
                timeout=TIMEOUT_MS,
            )
            assert "Version 2" in page.text_content("#editor-meta")

            # The order: the new reply is last; one arrow up puts it before its neighbour.
            items = page.locator("#reply-list li.item")
            assert items.last.get_attribute("data-reply-id") == str(reply_id)
            items.last.get_by_role("button", name="Move Mortgage rates 2027 up").click()
            page.wait_for_function(
                f"() => document.querySelector('#reply-list li.item:nth-last-child(2)')"
                f".dataset.replyId === '{reply_id}'",
                timeout=TIMEOUT_MS,
            )
            listed = api(page, base, "GET", "/api/kb/replies/").json()["replies"]
            assert [r["id"] for r in listed].index(reply_id) == len(listed) - 2

            # The list filter finds it by words of the body, accents ignored.
            page.fill("#filter-text", "mórtgage")
            assert page.locator("#reply-list li.item").count() == 1

            # Retire (two presses): the operator no longer finds it.
            page.click("#reply-retire")
            assert page.text_content("#reply-retire") == "Confirm: retire for good"
            page.click("#reply-retire")
            wait_text(page, "#staff-notices", "retired; its shortcut /mortgage-rates is free again")
            assert operator_search(operator, base, "mortgage") == []
            assert page.locator("#reply-list li.item").count() == 0
        assert errors.unexpected(ALLOWED_HTTP) == []


def test_narrow_screen_and_an_operator_is_refused(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=NARROW).new_page(), "coordinator")
        with screenshots_on_failure({"coordinator": page}, tmp_path, "replies"):
            open_page(page, base, "coordinator")
            assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
            page.locator("#reply-list .item-open").first.click()
            page.wait_for_function(
                "() => document.getElementById('reply-title').value !== ''", timeout=TIMEOUT_MS
            )
            assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
        operator = errors.watch(browser.new_context(viewport=WIDE).new_page(), "operator1")
        sign_in(operator, base, "operator1")
        response = operator.goto(f"{base}{PAGE}")
        assert response.status == 403
        assert operator.text_content("h1") == "No access to the knowledge base"
        assert operator.locator("#reply-form").count() == 0
        operator.click("text=Back to the console")
        operator.wait_for_url("**/console/")
        assert operator.request.post(f"{base}/api/kb/replies/preview/").status == 403
    assert [e for e in errors.unexpected(ALLOWED_HTTP) if "status of 403" not in e] == []
