"""The external advisors' pages in a real browser (seed 003), against the seeded demo.

The admin opens /staff/advisors/, sees the access code counting down, creates an advisor
account (a weak password first: the server's message under the field); the advisor signs
in to /advisor/, types a wrong code (the message under the field), then the admin's code,
and reads a conversation (read-only: no composer).  The admin removes the advisor: the
advisor's next click lands on the login page (the session ended with the access).  The
admin makes them permanent; the advisor signs in again, sees "Permanent advisor" and
leaves, which signs them out.  The admin replaces the code.  No JavaScript error on any
page, at 1280x800 and 400 px.

Chromium logs every 4xx answer as a console error ("Failed to load resource: … 400"); the
pages ask for those on purpose (validation, access ended, a refused page), so exactly those
lines are allowed, and only their status codes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.support import (
    DEMO_PASSWORD,
    NARROW,
    TIMEOUT_MS,
    WIDE,
    PageErrors,
    launch_chromium,
    screenshots_on_failure,
    sign_in_to,
)

pytestmark = pytest.mark.e2e

ADMIN_PAGE = "/staff/advisors/"
ADVISOR_PAGE = "/advisor/"
ADVISOR = "ext-advisor"
ADVISOR_PASSWORD = "advisor-pass-1"
ALLOWED_HTTP = (400, 401, 403)  # statuses the tests provoke on purpose


def open_page(page: Any, base: str, path: str, username: str, password: str) -> None:
    sign_in_to(page, base, path, username, password, ready="#advisors-main[data-ready=true]")


def advisor_row(page: Any) -> Any:
    return page.locator(f'#advisors-body tr[data-advisor="{ADVISOR}"]')


def wait_row_access(page: Any, label: str) -> None:
    page.wait_for_function(
        "([name, label]) => { const row = document.querySelector("
        '`#advisors-body tr[data-advisor="${name}"] .adv-badge`);'
        " return row && row.textContent === label; }",
        arg=[ADVISOR, label],
        timeout=TIMEOUT_MS,
    )


def test_admin_lets_an_advisor_in_removes_them_and_the_session_ends(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        admin = errors.watch(browser.new_context(viewport=WIDE).new_page(), "admin")
        outsider = errors.watch(browser.new_context(viewport=NARROW).new_page(), "advisor")
        pages = {"admin": admin, "advisor": outsider}
        with screenshots_on_failure(pages, tmp_path, "advisors"):
            open_page(admin, base, ADMIN_PAGE, "admin", DEMO_PASSWORD)
            # The staff navigation lists the page, marked as the current one.
            assert admin.get_attribute('a[data-page="advisors"]', "aria-current") == "page"
            code = admin.text_content("#code-value")
            assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code), code
            assert admin.text_content("#code-validity").startswith("Valid for ")

            # A weak password: the server's message under the field, nothing created.
            admin.fill("#new-username", ADVISOR)
            admin.fill("#new-password", "short")
            admin.click("#create-submit")
            admin.wait_for_selector("#new-password-error:not([hidden])", timeout=TIMEOUT_MS)
            assert "too short" in admin.text_content("#new-password-error")
            assert advisor_row(admin).count() == 0
            admin.fill("#new-password", ADVISOR_PASSWORD)
            admin.fill("#new-first", "Erika")
            admin.fill("#new-last", "Extern")
            admin.click("#create-submit")
            wait_row_access(admin, "No access")
            assert admin.locator("#new-password-error").is_hidden()

            # The advisor (on a phone-sized screen) joins: a wrong code first.
            open_page(outsider, base, ADVISOR_PAGE, ADVISOR, ADVISOR_PASSWORD)
            assert outsider.locator("#join-card").is_visible()
            assert outsider.locator("#conversations").is_hidden()
            outsider.fill("#join-code", "ZZZZ-ZZZZ")
            outsider.click("#join-submit")
            outsider.wait_for_selector("#join-code-error:not([hidden])", timeout=TIMEOUT_MS)
            assert "not valid" in outsider.text_content("#join-code-error")
            outsider.fill("#join-code", code.lower())
            outsider.click("#join-submit")
            outsider.wait_for_selector("#access-card:not([hidden])", timeout=TIMEOUT_MS)
            assert outsider.text_content("#access-text").startswith("Temporary access since")
            assert outsider.locator("#join-card").is_hidden()
            # Reports and cases are among their areas.
            assert outsider.locator("#areas-nav a", has_text="Reports").count() == 1
            outsider.wait_for_selector("#cases:not([hidden])", timeout=TIMEOUT_MS)

            # Read a conversation: messages shown, nothing to write with.
            outsider.wait_for_selector(".adv-conv", timeout=TIMEOUT_MS)
            outsider.locator(".adv-conv").first.click()
            outsider.wait_for_selector("#thread-messages .adv-msg", timeout=TIMEOUT_MS)
            assert outsider.locator("textarea, #composer").count() == 0

            # The admin sees them, temporary, and removes them.
            admin.reload()
            admin.wait_for_selector("#advisors-main[data-ready=true]", timeout=TIMEOUT_MS)
            wait_row_access(admin, "Temporary")
            advisor_row(admin).get_by_role("button", name="Remove").click()
            wait_row_access(admin, "No access")
            assert "removed" in admin.text_content("#adv-notices")
            assert "Erika Extern" in admin.text_content("#history-list")

            # The advisor's next click: the session has ended, the login page.
            outsider.locator(".adv-conv").first.click()
            outsider.wait_for_url("**/accounts/login/**", timeout=TIMEOUT_MS)
            assert outsider.locator("#id_username").is_visible()

            # Permanent: the advisor signs in again and finds their access waiting.
            advisor_row(admin).get_by_role("button", name="Make permanent").click()
            wait_row_access(admin, "Permanent")
            assert advisor_row(admin).get_by_role("button", name="Make permanent").count() == 0
            open_page(outsider, base, ADVISOR_PAGE, ADVISOR, ADVISOR_PASSWORD)
            outsider.wait_for_selector("#access-card:not([hidden])", timeout=TIMEOUT_MS)
            assert outsider.text_content("#access-text").startswith("Permanent advisor since")

            # They leave by themselves: signed out, and the admin's list says so.
            outsider.click("#leave")
            outsider.wait_for_url("**/accounts/login/**", timeout=TIMEOUT_MS)
            admin.reload()
            admin.wait_for_selector("#advisors-main[data-ready=true]", timeout=TIMEOUT_MS)
            wait_row_access(admin, "No access")
            assert "(left by Erika Extern)" in admin.text_content("#history-list")

            # Replacing the code shows a new one.
            admin.click("#code-rotate")
            admin.wait_for_function(
                "(old) => document.getElementById('code-value').textContent !== old",
                arg=code,
                timeout=TIMEOUT_MS,
            )
            assert "no longer works" in admin.text_content("#adv-notices")

            # Staff who are not admins are refused the page, with a page saying why.
            coordinator = errors.watch(browser.new_context(viewport=WIDE).new_page(), "coord")
            coordinator.goto(f"{base}/accounts/login/?next={ADMIN_PAGE}")
            coordinator.fill("#id_username", "coordinator")
            coordinator.fill("#id_password", DEMO_PASSWORD)
            coordinator.click("button[type=submit]")
            coordinator.wait_for_selector("h1.login-title", timeout=TIMEOUT_MS)
            assert "No access to external advisors" in coordinator.text_content("h1")

    assert errors.unexpected(ALLOWED_HTTP) == [], errors.errors
