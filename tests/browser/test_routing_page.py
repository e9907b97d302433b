"""The coordinators' routing page (/coordinator/routing/) in a real browser, against the
seeded demo (Payments, Follow-up — the default — and Claims; operator1 "Omar One" serves
Payments and Follow-up, operator2 "Olga Two" Claims and Follow-up; the type menu is off).

A coordinator adds a query type, Mortgages: a keyword that already picks Payments is
refused by the server under the keywords; with its own keywords it is saved.  They turn
the type menu on, give Olga the new type and add a resolution reason for it.  Then a
customer who opens the bank's web chat without a type gets the menu (Mortgages is its 4th
entry), answers "a question about my home loan", and the conversation is typed Mortgages
and lands in Olga's console, live; the operators' options offer the new reason for it.
A stale edit shows the conflict.  An operator is refused the page.  No JavaScript error,
at 1280x800 and at 400 px.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.support import (
    NARROW,
    TIMEOUT_MS,
    WIDE,
    PageErrors,
    get_json,
    launch_chromium,
    screenshots_on_failure,
    sign_in,
    sign_in_to,
    wait_text,
)

pytestmark = pytest.mark.e2e

PAGE = "/coordinator/routing/"
ALLOWED_HTTP = (400, 409)  # statuses the tests provoke on purpose


def open_page(page: Any, base: str, username: str) -> None:
    sign_in_to(page, base, PAGE, username, ready="#routing-main[data-ready=true]")


def test_a_new_query_type_routes_by_keyword_to_the_operator_who_serves_it(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=WIDE).new_page(), "coordinator")
        olga = errors.watch(browser.new_context(viewport=WIDE).new_page(), "operator2")
        customer = errors.watch(browser.new_context(viewport=WIDE).new_page(), "customer")
        pages = {"coordinator": page, "operator2": olga, "customer": customer}
        with screenshots_on_failure(pages, tmp_path, "routing"):
            open_page(page, base, "coordinator")
            assert page.locator("#type-rows tr").count() == 3
            default = page.locator("#type-rows tr", has_text="Follow-up")
            assert default.locator(".tag-pill", has_text="Default").count() == 1

            # A new type; "card" already picks Payments: the server says so, under keywords.
            page.click("#type-new")
            assert page.evaluate("document.activeElement.id") == "type-name"
            page.fill("#type-name", "Mortgages")
            page.fill("#type-code", "mortgages")
            page.fill("#type-priority", "130")
            page.fill("#type-keywords", "mortgage\nhome loan, card")
            page.click("#type-save")
            page.wait_for_selector("#type-keywords-error:not([hidden])", timeout=TIMEOUT_MS)
            assert page.text_content("#type-keywords-error") == (
                "“card” already picks Payments; an answer with it would match both types "
                "and route to neither."
            )
            assert page.get_attribute("#type-keywords", "aria-invalid") == "true"
            assert page.evaluate("document.activeElement.id") == "type-keywords"
            assert page.locator("#type-rows tr").count() == 3  # nothing saved
            page.fill("#type-keywords", "mortgage\nhome loan")
            page.click("#type-save")
            wait_text(page, "#staff-notices", "Query type Mortgages created.")
            row = page.locator("#type-rows tr", has_text="Mortgages")
            assert row.locator("td").nth(3).text_content() == "mortgage, home loan"
            assert page.input_value("#type-code") == "mortgages"
            assert page.get_attribute("#type-code", "readonly") is not None

            # The type menu, on; the page shows what customers will read.
            page.check("#menu-enabled")
            assert page.text_content("#menu-preview").endswith("3 Claims\n4 Mortgages")
            page.click("#menu-save")
            wait_text(page, "#menu-status", "Saved · version 2")

            # Olga serves Mortgages too.
            olga_row = page.locator("#operator-rows tr", has_text="Olga Two")
            olga_row.get_by_role("button", name="Edit Olga Two").click()
            assert page.evaluate("document.activeElement.id") == "operator-capacity"
            page.locator("#operator-types label", has_text="Mortgages").locator("input").check()
            page.click("#operator-save")
            wait_text(page, "#staff-notices", "Olga Two saved.")
            olga_row.locator("td", has_text="Mortgages").wait_for(timeout=TIMEOUT_MS)

            # A resolution reason for Mortgages only.
            page.click("#reason-new")
            page.fill("#reason-name", "Mortgage offer sent")
            page.locator("#reason-types label", has_text="Mortgages").locator("input").check()
            page.click("#reason-save")
            wait_text(page, "#staff-notices", "Resolution reason “Mortgage offer sent” saved.")
            page.select_option("#reason-filter", label="Conversations of Mortgages")
            listed = page.locator("#reason-rows tr td:first-child strong").all_text_contents()
            assert "Mortgage offer sent" in listed and "Claim registered" not in listed
            assert "Resolved in the chat" in listed  # the reasons for every type

            # Olga's console is open; a customer writes without a type.
            sign_in(olga, base, "operator2")
            customer.goto(f"{base}/webchat/")
            customer.click("[data-hub-webchat] button.launcher")
            customer.fill("[data-hub-webchat] .name input", "Maria Costa")
            customer.fill("[data-hub-webchat] textarea", "Good morning")
            customer.press("[data-hub-webchat] textarea", "Enter")
            customer.wait_for_selector(
                "[data-hub-webchat] .msg.mine:not(.pending) >> text=Good morning",
                timeout=TIMEOUT_MS,
            )
            # The menu arrives live on the widget's socket (chat.consumers catches up on
            # what was stored with the first message once it has joined the group).
            menu = customer.locator("[data-hub-webchat] .msg:not(.mine)", has_text="4 Mortgages")
            menu.wait_for(timeout=TIMEOUT_MS)
            assert "How can we help you? Reply with a number:" in menu.text_content()
            customer.fill("[data-hub-webchat] textarea", "A question about my home loan")
            customer.press("[data-hub-webchat] textarea", "Enter")

            # The answer's keyword typed it Mortgages; only Olga serves it: her console.
            olga_row_conv = olga.locator("#conv-list button.conv", has_text="Maria Costa")
            olga_row_conv.wait_for(timeout=TIMEOUT_MS)
            conversations = get_json(page, base, "/api/conversations/")["conversations"]
            maria = next(c for c in conversations if c["customer"]["name"] == "Maria Costa")
            assert maria["query_type"]["code"] == "mortgages"
            assert (maria["status"], maria["operator"]["name"]) == ("assigned", "Olga Two")
            options = get_json(olga, base, "/api/routing/options/")
            mortgages_id = maria["query_type"]["id"]
            reason = next(r for r in options["resolutions"] if r["name"] == "Mortgage offer sent")
            assert reason["query_type_ids"] == [mortgages_id]

            # A stale edit: the type changed since the page loaded it.
            page.locator("#type-rows tr", has_text="Claims").get_by_role(
                "button", name="Edit Claims"
            ).click()
            csrf = page.evaluate("document.getElementById('routing-main').dataset.csrf")
            claims = next(
                t
                for t in get_json(page, base, "/api/routing/config/")["query_types"]
                if t["code"] == "claims"
            )
            changed = page.request.fetch(
                f"{base}/api/routing/query-types/{claims['id']}/",
                method="PATCH",
                data={"etag": claims["etag"], "priority": 160},
                headers={"X-CSRFToken": csrf},
            )
            assert changed.status == 200, changed.text()
            page.fill("#type-priority", "155")
            page.click("#type-save")
            page.wait_for_selector("#conflict:not([hidden])", timeout=TIMEOUT_MS)
            assert page.text_content("#conflict-title") == "Someone else changed this query type"
            page.click("#conflict-reload")
            page.wait_for_function(
                "() => document.getElementById('type-priority').value === '160'",
                timeout=TIMEOUT_MS,
            )
        assert errors.unexpected(ALLOWED_HTTP) == []


def test_narrow_screen_and_an_operator_is_refused(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=NARROW).new_page(), "coordinator")
        with screenshots_on_failure({"coordinator": page}, tmp_path, "routing"):
            open_page(page, base, "coordinator")
            assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
            page.locator("#operator-rows tr", has_text="Omar One").get_by_role("button").click()
            page.fill("#operator-capacity", "101")
            page.click("#operator-save")
            page.wait_for_selector("#operator-capacity-error:not([hidden])", timeout=TIMEOUT_MS)
            assert page.text_content("#operator-capacity-error") == (
                "capacity must be between 0 and 100."
            )
            assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
        operator = errors.watch(browser.new_context(viewport=WIDE).new_page(), "operator1")
        sign_in(operator, base, "operator1")
        response = operator.goto(f"{base}{PAGE}")
        assert response.status == 403
        assert operator.text_content("h1") == "No access to the routing settings"
        assert operator.locator("#type-form").count() == 0
        assert operator.request.get(f"{base}/api/routing/config/").status == 403
    assert [e for e in errors.unexpected(ALLOWED_HTTP) if "status of 403" not in e] == []
