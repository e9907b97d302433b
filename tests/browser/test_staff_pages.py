"""The admins' staff pages in a real browser, against a real daphne with the demo seeded
(admin "Ada Admin", coordinator, operator1 "Omar One" — Payments, Follow-up — holding Ana
García (Payments) and Chen Li (Follow-up), operator2 "Olga Two" — Claims, Follow-up —
holding Ben Müller (Claims); password "demo").

1. Users and roles: the admin creates an operator (a bad user name first: the server's
   error shows next to the field), who then signs in to the console; a coordinator without
   the grant is refused the page.
2. Batch derivation: operator1 steps away; the admin picks them on the derivations page,
   sees their two conversations, is refused a colleague who does not serve Payments (the
   precise reason on screen), previews a spread and confirms.  operator2's console shows
   Chen Li without a reload, operator1's loses both.
3. Absences and the audit log: the admin plans an absence and cancels it, then filters
   the audit log down to it, exports the same filters as CSV and verifies the chain.

No page may log a JavaScript error, except Chromium's line for the 4xx answers the tests
provoke on purpose.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import (
    TIMEOUT_MS,
    PageErrors,
    launch_chromium,
    screenshots_on_failure,
    sign_in,
    sign_in_to,
)

pytestmark = pytest.mark.e2e

VIEWPORT = {"width": 1280, "height": 800}
ALLOWED_HTTP = (400, 403, 409)  # statuses the tests provoke on purpose
NEW_PASSWORD = "Welcome-to-the-bank-7"


def open_page(page: Any, base: str, username: str, path: str, main: str) -> None:
    sign_in_to(page, base, path, username, ready=f"#{main}[data-ready=true]")


def nav_links(page: Any) -> list[str]:
    return page.locator(".staff-nav-links a").all_text_contents()


def test_admin_creates_an_operator_who_can_then_sign_in(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        admin = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "admin")
        pages = {"admin": admin}
        with screenshots_on_failure(pages, tmp_path, "staff"):
            open_page(admin, base, "admin", "/staff/users/", "users-main")
            links = nav_links(admin)
            for label in ("Console", "Hours", "Users", "Derivations", "Audit log"):
                assert label in links
            assert admin.get_attribute(".staff-nav-links a[aria-current=page]", "href") == (
                "/staff/users/"
            )
            for username in ("admin", "coordinator", "operator1", "operator2"):
                admin.locator(f'#users-body tr[data-username="{username}"]').wait_for()

            admin.click("#user-new")
            admin.wait_for_selector("#user-dialog[open]")
            assert admin.evaluate("document.activeElement.id") == "user-first"
            admin.fill("#user-first", "Nora")
            admin.fill("#user-last", "Newcomer")
            admin.fill("#user-username", "nora new")  # a space: refused by the server
            admin.fill("#user-email", "nora@bank.example")
            admin.fill("#user-password", NEW_PASSWORD)
            assert admin.input_value("#user-role") == "Operator"
            assert admin.is_hidden("#user-grant-field")  # only for coordinators
            admin.check("#user-type-payments")
            admin.fill("#user-capacity", "3")
            admin.click("#user-save")
            error = admin.locator("#user-username-error")
            error.wait_for(state="visible", timeout=TIMEOUT_MS)
            assert "user name" in error.text_content()
            assert admin.get_attribute("#user-username", "aria-invalid") == "true"
            assert admin.evaluate("document.activeElement.id") == "user-username"
            admin.fill("#user-username", "nora")
            admin.click("#user-save")
            admin.wait_for_selector("#user-dialog", state="hidden", timeout=TIMEOUT_MS)
            row = admin.locator('#users-body tr[data-username="nora"]')
            row.wait_for(timeout=TIMEOUT_MS)
            assert "Nora Newcomer" in row.text_content()
            assert "Operator" in row.text_content() and "Payments" in row.text_content()
            admin.locator("#users-notices", has_text="Created Nora Newcomer").wait_for()

            # The new operator signs in to the console.
            nora = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "nora")
            pages["nora"] = nora
            sign_in(nora, base, "nora", NEW_PASSWORD)
            assert nora.text_content("#console .user-role").strip() == "Operator"

            # A coordinator without the grant is refused the page, and has no link to it.
            coord = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "coord")
            pages["coord"] = coord
            sign_in(coord, base, "coordinator")
            response = coord.goto(f"{base}/staff/users/")
            assert response.status == 403
            assert "No access to users and roles" in coord.text_content("h1")
    assert errors.unexpected(ALLOWED_HTTP) == [], "\n".join(errors.errors)


def _row(page: Any, name: str) -> Any:
    return page.locator("#conv-list button.conv", has_text=name)


def _option_value(page: Any, select: str, text: str) -> str:
    value = page.locator(f"{select} option", has_text=text).first.get_attribute("value")
    assert value, f"no option {text!r} in {select}"
    return value


def test_admin_batch_derives_an_absent_operator_and_the_consoles_follow(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:

        def console(username: str) -> Any:
            page = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), username)
            sign_in(page, base, username)
            return page

        op1 = console("operator1")
        op2 = console("operator2")
        admin = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), "admin")
        pages = {"operator1": op1, "operator2": op2, "admin": admin}
        with screenshots_on_failure(pages, tmp_path, "staff"):
            _row(op1, "Chen Li").wait_for(timeout=TIMEOUT_MS)
            _row(op2, "Ben Müller").wait_for(timeout=TIMEOUT_MS)
            assert _row(op2, "Chen Li").count() == 0
            # operator1 steps away.
            op1.select_option("#presence", "away")
            op1.wait_for_selector("#presence[aria-busy=false]", timeout=TIMEOUT_MS)

            open_page(admin, base, "admin", "/staff/derivations/", "derive-main")
            omar = _option_value(admin, "#derive-from", "Omar One")
            assert "away" in admin.locator(f'#derive-from option[value="{omar}"]').text_content()
            admin.select_option("#derive-from", omar)
            listing = admin.locator("#derive-conversations")
            listing.locator("tr", has_text="Ana García").wait_for(timeout=TIMEOUT_MS)
            assert listing.locator("tr", has_text="Chen Li").count() == 1
            assert "2 open conversations of Omar One" in admin.text_content(
                "#derive-conversations-title"
            )
            # operator1 is not offered as their own target.
            assert admin.locator(f'#derive-to option[value="{omar}"]').count() == 0

            # One colleague who does not serve Payments: refused, with the reason.
            admin.select_option("#derive-to", _option_value(admin, "#derive-to", "Olga Two"))
            admin.click("#derive-preview")
            refusal = admin.locator("#derive-error")
            refusal.wait_for(state="visible", timeout=TIMEOUT_MS)
            assert "does not serve: Payments" in refusal.text_content()
            assert admin.is_hidden("#derive-confirm")

            # Spread: Chen to Olga (Follow-up), Ana to the queue (nobody else serves Payments).
            admin.select_option("#derive-to", "spread")
            admin.click("#derive-preview")
            plan = admin.locator("#derive-plan")
            plan.locator(".derive-plan-title", has_text="2 conversations of Omar One").wait_for(
                timeout=TIMEOUT_MS
            )
            olga = _option_value(admin, "#derive-to", "Olga Two")
            targets = {
                li.get_attribute("data-target"): li.locator(".derive-plan-count").text_content()
                for li in plan.locator(".derive-plan-target").all()
            }
            assert targets == {olga: "1", "queue": "1"}
            assert _row(op1, "Chen Li").count() == 1  # nothing moved yet
            assert admin.text_content("#derive-confirm") == "Confirm: move 2"
            admin.fill("#derive-note", "Omar is ill today")
            admin.click("#derive-confirm")
            plan.locator(".derive-plan-title", has_text="Done: 2 conversations moved").wait_for(
                timeout=TIMEOUT_MS
            )
            assert admin.is_hidden("#derive-confirm")
            admin.locator("#derive-conversations-title", has_text="no open conversations").wait_for(
                timeout=TIMEOUT_MS
            )

            # The consoles follow without a reload.
            chen = _row(op2, "Chen Li")
            chen.wait_for(timeout=TIMEOUT_MS)
            assert chen.locator(".type-badge").text_content() == "Follow-up"
            _row(op1, "Chen Li").wait_for(state="detached", timeout=TIMEOUT_MS)
            _row(op1, "Ana García").wait_for(state="detached", timeout=TIMEOUT_MS)
            op1.locator("#notices .notice-info", has_text="2 conversations were moved").wait_for(
                timeout=TIMEOUT_MS
            )
            chen.click()
            moved = op2.locator("#message-list .msg-timeline", has_text="Omar is ill today")
            moved.wait_for(timeout=TIMEOUT_MS)
    assert errors.unexpected(ALLOWED_HTTP) == [], "\n".join(errors.errors)


def test_absences_and_the_audit_log_filters_exports_and_verifies(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        admin = errors.watch(context.new_page(), "admin")
        with screenshots_on_failure({"admin": admin}, tmp_path, "staff"):
            open_page(admin, base, "admin", "/staff/derivations/", "derive-main")
            # An end before the start: the server's refusal next to the field.
            admin.select_option(
                "#absence-operator", _option_value(admin, "#absence-operator", "Olga Two")
            )
            admin.fill("#absence-from", "2031-03-02T09:00")
            admin.fill("#absence-to", "2031-03-01T09:00")
            admin.fill("#absence-reason", "Dentist")
            admin.click("#absence-create")
            admin.locator("#absence-to-error", has_text="end after it starts").wait_for(
                timeout=TIMEOUT_MS
            )
            admin.fill("#absence-to", "2031-03-02T13:00")
            admin.click("#absence-create")
            row = admin.locator("#absences-body tr", has_text="Dentist")
            row.wait_for(timeout=TIMEOUT_MS)
            assert "Olga Two" in row.text_content() and "Planned" in row.text_content()
            row.locator("button", has_text="Cancel").click()
            row.wait_for(state="detached", timeout=TIMEOUT_MS)
            admin.locator("#derive-notices", has_text="cancelled").wait_for()

            admin.click('.staff-nav-links a[data-page="audit"]')
            admin.wait_for_url("**/staff/audit/")
            admin.wait_for_selector("#audit-main[data-ready=true]", timeout=TIMEOUT_MS)
            admin.locator("#audit-body tr", has_text="staff.absence_cancelled").first.wait_for()

            # Filter: one action.
            admin.select_option("#f-action", "staff.absence_created")
            admin.click("#audit-apply")
            admin.wait_for_function(
                "() => [...document.querySelectorAll('#audit-body tr')].every("
                "r => r.dataset.action === 'staff.absence_created')",
                timeout=TIMEOUT_MS,
            )
            created = admin.locator("#audit-body tr")
            assert created.count() == 1
            assert "Ada Admin" in created.first.text_content()
            created.first.locator("summary").click()
            assert "Dentist" in created.first.locator("pre").text_content()
            assert "action=staff.absence_created" in admin.url

            # Filter: refused attempts only (the bad absence above is one of them).
            admin.select_option("#f-action", "")
            admin.select_option("#f-outcome", "refused")
            admin.click("#audit-apply")
            admin.wait_for_function(
                "() => { const rows = [...document.querySelectorAll('#audit-body tr')];"
                " return rows.length > 0 && rows.every(r => r.dataset.outcome === 'refused'); }",
                timeout=TIMEOUT_MS,
            )
            refused_actions = {
                r.get_attribute("data-action") for r in admin.locator("#audit-body tr").all()
            }
            assert "staff.absence_create" in refused_actions
            shown = admin.locator("#audit-body tr").count()

            # Export: the same filters.
            href = admin.get_attribute("#audit-export", "href")
            assert href == "/api/audit/export.csv?outcome=refused"
            with admin.expect_download(timeout=TIMEOUT_MS) as info:
                admin.click("#audit-export")
            download = info.value
            rows = list(csv.reader(io.StringIO(Path(download.path()).read_text("utf-8"))))
            header, body = rows[0], rows[1:]
            assert "action" in header and "outcome" in header
            assert len(body) == shown
            assert {r[header.index("outcome")] for r in body} == {"refused"}

            # The chain holds.
            admin.click("#audit-verify")
            admin.wait_for_selector("#verify-box[data-ok=true]", timeout=TIMEOUT_MS)
            assert "Chain intact" in admin.text_content("#verify-result")
    assert errors.unexpected(ALLOWED_HTTP) == [], "\n".join(errors.errors)
