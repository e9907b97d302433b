"""The console's back-office panel in a real browser (issue 6 + issue 7): a maker requests a
block and a checker approves it in another browser context.

A real daphne process serves the seeded demo with its ``BACKOFFICE_*`` settings pointing at
the back-office stand-in (``backoffice_bridge.standin``), served over real HTTP from a
background thread of this test process.  A customer writes on the web chat; the
coordinator (a maker) finds the bank user by last name and links them, meets the server's
precise error on a field, sends a limits change and cancels it (it leaves the checker's
list), and requests a block ("To Be Inactivated"); the admin (a checker)
sees it arrive live in "Requests sent for approval", picks it up (the maker sees who holds
it) and approves; the maker's console shows "Inactive" without reloading, the timeline
carries the outcome note and the stand-in's user is suspended.  The maker's own request
shows "your request — another checker must approve" without an Approve button, and the
API refuses their approval.  An on-behalf action is shown disabled with seed 001's reason.
At 400 px the panel opens from the thread's header and Escape closes it.  A payment
inquiry case opened from the panel shows its card (state, tasks) and its timeline line;
consent is recorded and revoked through the panel's dialogs.

Chromium logs every 4xx answer as a console error ("Failed to load resource: … 400"); the
test provokes exactly one on purpose (the server's field error), so only that line is
allowed.  Screenshots of every page are saved when a step fails.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from backoffice_bridge.standin import StandinConfig, standin_app
from tests.browser.support import (
    NARROW,
    TIMEOUT_MS,
    WIDE,
    PageErrors,
    launch_chromium,
    running_demo_hub,
    screenshots_on_failure,
    sign_in,
)
from tests.harness import HubProcess, ThreadedApp

pytestmark = pytest.mark.e2e

TOKEN = "browser-backoffice-token"
ALLOWED_HTTP = (400,)  # statuses the tests provoke on purpose


class Standin(ThreadedApp):
    """The back-office stand-in on a loopback port, in a background thread."""

    def __init__(self) -> None:
        super().__init__(lambda: standin_app(StandinConfig(token=TOKEN)), name="bo-standin")

    def user(self, user_id: str) -> dict[str, Any]:
        """The bank's record, read through the control API (no auth, not logged)."""
        with urllib.request.urlopen(f"{self.url}/_standin/users/{user_id}", timeout=15) as r:
            return json.loads(r.read())["user"]


@pytest.fixture(scope="module")
def backoffice_hub(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HubProcess, Standin]]:
    """The seeded demo hub wired to a fresh back-office stand-in."""
    var_dir = tmp_path_factory.mktemp("browser-backoffice")
    with (
        Standin() as standin,
        running_demo_hub(var_dir, BACKOFFICE_BASE_URL=standin.url, BACKOFFICE_TOKEN=TOKEN) as hub,
    ):
        yield hub, standin


def customer_writes(page: Any, base: str, name: str, text: str) -> None:
    page.goto(f"{base}/webchat/")
    page.click("[data-hub-webchat] button.launcher")
    page.fill("[data-hub-webchat] .name input", name)
    page.fill("[data-hub-webchat] textarea", text)
    page.press("[data-hub-webchat] textarea", "Enter")
    page.wait_for_selector("[data-hub-webchat] .msg.mine:not(.pending)", timeout=TIMEOUT_MS)


def open_conversation(page: Any, customer_name: str) -> str:
    row = page.locator("#conv-list button.conv", has_text=customer_name)
    row.wait_for(timeout=TIMEOUT_MS)
    conversation_id = row.get_attribute("data-id")
    row.click()
    page.wait_for_selector("#thread-main:not([hidden])", timeout=TIMEOUT_MS)
    return conversation_id


def api_post(page: Any, base: str, path: str) -> Any:
    """A POST from the page's session (its cookies and CSRF token), outside the UI."""
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    return page.request.post(
        f"{base}{path}", headers={"X-CSRFToken": csrf, "Content-Type": "application/json"}
    )


def test_maker_requests_a_block_and_a_checker_approves_it(backoffice_hub, tmp_path):
    hub, standin = backoffice_hub
    base = hub.http
    errors = PageErrors()
    marker = uuid.uuid4().hex[:6]
    customer_name = f"Bruno {marker}"
    assert standin.user("U1002")["status"] == "active"

    with launch_chromium() as browser:
        customer = errors.watch(browser.new_context(viewport=WIDE).new_page(), "customer")
        maker = errors.watch(browser.new_context(viewport=WIDE).new_page(), "coordinator")
        checker = errors.watch(browser.new_context(viewport=WIDE).new_page(), "admin")
        pages = {"customer": customer, "coordinator": maker, "admin": checker}
        with screenshots_on_failure(pages, tmp_path, "backoffice"):
            question = f"I lost my phone, block my app {marker}"
            customer_writes(customer, base, customer_name, question)

            # The checker is signed in before anything is requested: it arrives live.
            sign_in(checker, base, "admin")
            checker.click("#approvals-open")
            checker.wait_for_selector("#approvals:not([hidden])", timeout=TIMEOUT_MS)
            checker.locator("#approvals-empty", has_text="Nothing waits").wait_for(
                timeout=TIMEOUT_MS
            )

            # The maker opens the conversation: the panel is open at 1280 px, not linked.
            sign_in(maker, base, "coordinator")
            maker.evaluate("(m) => { window.__signedIn = m; }", marker)
            conversation_id = open_conversation(maker, customer_name)
            panel = maker.locator("#bo-panel")
            panel.wait_for(state="visible", timeout=TIMEOUT_MS)
            panel.locator("#bo-link", has_text="Not linked to a bank user.").wait_for(
                timeout=TIMEOUT_MS
            )
            # Actions wait for a link, with the reason.
            unlinked = panel.locator("#bo-actions .bo-actions-unlinked")
            unlinked.wait_for(timeout=TIMEOUT_MS)
            assert (
                unlinked.text_content() == "Disabled as the customer is not linked to a bank user"
            )
            block_button = panel.locator('li[data-action="block_user"] button.bo-action')
            assert block_button.get_attribute("aria-disabled") == "true"
            # Coordinators may not act on behalf: those types are not offered at all.
            assert panel.locator('li[data-action="dispute_transaction"]').count() == 0

            # Search by last name (seed 000's columns), with the keyboard, and link.
            maker.select_option("#bo-search-field", "last_name")
            maker.fill("#bo-search-q", "silva")
            maker.press("#bo-search-q", "Enter")
            result = panel.locator('.bo-result[data-bank-user-id="U1002"]')
            result.wait_for(timeout=TIMEOUT_MS)
            assert "Bruno Silva" in result.text_content()
            result.get_by_role("button", name="Link").click()
            user_card = panel.locator('.bo-user[data-bank-user-id="U1002"]')
            user_card.wait_for(timeout=TIMEOUT_MS)
            assert user_card.locator(".bo-user-status").text_content() == "Active"
            assert "bruno.silva" in user_card.text_content().lower()
            linked_line = "Linked to bank user Bruno Silva"
            maker.locator("#message-list .msg-bo", has_text=linked_line).wait_for(
                timeout=TIMEOUT_MS
            )

            # A form built from the type's params: the server's precise error on its field.
            limits = panel.locator('li[data-action="temporary_limits"] button.bo-action')
            limits.wait_for(timeout=TIMEOUT_MS)
            assert limits.get_attribute("aria-disabled") is None
            limits.click()
            maker.wait_for_selector("#bo-action-dialog[open]", timeout=TIMEOUT_MS)
            assert "50,000" in maker.text_content('[data-param="daily_transfer"] .field-hint')
            maker.fill("#bo-p-daily_transfer", "60000")
            maker.click("#bo-action-submit")
            assert "At most 50,000" in maker.text_content("#bo-p-daily_transfer-error")
            maker.fill("#bo-p-daily_transfer", "100")
            maker.fill("#bo-p-single_transfer", "200")
            maker.click("#bo-action-submit")
            maker.locator(
                "#bo-p-single_transfer-error",
                has_text="The single transfer limit may not exceed the daily limit.",
            ).wait_for(timeout=TIMEOUT_MS)
            assert maker.get_attribute("#bo-p-single_transfer", "aria-invalid") == "true"
            maker.fill("#bo-p-single_transfer", "50")
            maker.click("#bo-action-submit")
            maker.wait_for_selector("#bo-action-dialog", state="hidden", timeout=TIMEOUT_MS)

            # The maker withdraws it before anyone decides: gone from the checker's list.
            limits_request = panel.locator("#bo-requests li.bo-request").first
            limits_request.wait_for(timeout=TIMEOUT_MS)
            limits_id = limits_request.get_attribute("data-request-id")
            assert limits_request.locator(".bo-status").text_content() == (
                "To Be Changed (Temporary Limits)"
            )
            arrived = checker.locator(f'#approvals-list li[data-request-id="{limits_id}"]')
            arrived.wait_for(timeout=TIMEOUT_MS)
            limits_request.locator("button.bo-cancel").click()
            limits_request.locator("button.bo-cancel", has_text="Confirm cancel").click()
            limits_request.locator(".bo-status", has_text="Cancelled").wait_for(timeout=TIMEOUT_MS)
            arrived.wait_for(state="detached", timeout=TIMEOUT_MS)

            # The block: a required choice, then saved "To Be Inactivated".
            panel.locator('li[data-action="block_user"] button.bo-action').click()
            maker.wait_for_selector("#bo-action-dialog[open]", timeout=TIMEOUT_MS)
            maker.click("#bo-action-submit")
            assert maker.text_content("#bo-p-reason-error") == "Required."
            maker.select_option("#bo-p-reason", "lost_device")
            maker.click("#bo-action-submit")
            maker.wait_for_selector("#bo-action-dialog", state="hidden", timeout=TIMEOUT_MS)
            mine = panel.locator('#bo-requests li.bo-request[data-status="pending"]')
            mine.wait_for(timeout=TIMEOUT_MS)
            request_id = mine.get_attribute("data-request-id")
            mine = panel.locator(f'#bo-requests li[data-request-id="{request_id}"]')
            assert mine.locator(".bo-status").text_content() == "To Be Inactivated"
            assert mine.locator(".bo-own").text_content() == (
                "Your request \u2014 another checker must approve"
            )

            # The checker sees it arrive live, and picks it up.
            item = checker.locator(f'#approvals-list li[data-request-id="{request_id}"]')
            item.wait_for(timeout=TIMEOUT_MS)
            assert item.locator(".bo-status").text_content() == "To Be Inactivated"
            assert customer_name in item.text_content()
            assert "Carla Coordinator" in item.text_content()
            assert checker.text_content("#approvals-count") == "1"
            item.locator("button.bo-pick").click()
            item.locator("button.bo-release").wait_for(timeout=TIMEOUT_MS)

            # The maker is a checker too, but not of their own request: no Approve button,
            # and the API refuses.
            maker.click("#approvals-open")
            own = maker.locator(f'#approvals-list li[data-request-id="{request_id}"]')
            own.wait_for(timeout=TIMEOUT_MS)
            assert own.locator(".bo-own").text_content() == (
                "Your request \u2014 another checker must approve"
            )
            assert own.locator("button.bo-approve").count() == 0
            own.locator(".bo-note", has_text="picked up by Ada Admin").wait_for(timeout=TIMEOUT_MS)
            maker.keyboard.press("Escape")
            maker.wait_for_selector("#approvals[hidden]", state="attached", timeout=TIMEOUT_MS)
            refused = api_post(maker, base, f"/api/backoffice/requests/{request_id}/approve/")
            assert refused.status == 403
            assert refused.json()["code"] == "permission_denied"
            assert refused.json()["data"]["reason"] == "own_request"
            mine.locator(".bo-note", has_text="picked up by Ada Admin").wait_for(timeout=TIMEOUT_MS)

            # The checker (who may act on behalf) opens the conversation: the dispute is
            # offered but disabled with seed 001's reason.
            item.locator("button.bo-open").click()
            checker.locator("#thread-title", has_text=customer_name).wait_for(timeout=TIMEOUT_MS)
            dispute = checker.locator('#bo-actions li[data-action="dispute_transaction"]')
            dispute.wait_for(timeout=TIMEOUT_MS)
            assert dispute.locator("button").get_attribute("aria-disabled") == "true"
            assert (
                dispute.locator(".bo-disabled-reason").text_content()
                == "Disabled as the customer has not consented"
            )

            # The drawer made way for the conversation, whose panel holds the same decision.
            assert checker.is_hidden("#approvals")
            held = checker.locator(f'#bo-requests li[data-request-id="{request_id}"]')
            assert held.locator(".bo-own").count() == 0

            # Approve: the back office is called, the maker sees it done, live.
            held.locator("button.bo-approve").click()
            item.wait_for(state="detached", timeout=TIMEOUT_MS)
            held.locator(".bo-status", has_text="Inactive").wait_for(timeout=TIMEOUT_MS)
            mine.locator(".bo-status", has_text="Inactive").wait_for(timeout=TIMEOUT_MS)
            assert mine.get_attribute("data-status") == "done"
            maker.locator("#message-list .msg-bo", has_text="Internal note:").wait_for(
                timeout=TIMEOUT_MS
            )
            assert standin.user("U1002")["status"] == "suspended"
            # The link re-read the status the action set, on both consoles.
            user_card.locator(".bo-user-status", has_text="Suspended").wait_for(timeout=TIMEOUT_MS)
            dispute.locator(
                ".bo-disabled-reason", has_text="Disabled as the customer is suspended"
            ).wait_for(timeout=TIMEOUT_MS)
            assert checker.text_content("#approvals-count") == "0"

            # Nobody reloaded: the marker set after signing in is still there.
            assert maker.evaluate("() => window.__signedIn") == marker

    assert errors.unexpected(ALLOWED_HTTP) == [], "\n".join(errors.errors)
    assert len(errors.errors) <= 1, errors.errors  # only the provoked field error
    assert conversation_id


def test_panel_on_a_narrow_screen_opens_and_closes_with_the_keyboard(backoffice_hub, tmp_path):
    hub, _ = backoffice_hub
    base = hub.http
    errors = PageErrors()
    marker = uuid.uuid4().hex[:6]
    customer_name = f"Narrow {marker}"
    with launch_chromium() as browser:
        customer = errors.watch(browser.new_context(viewport=WIDE).new_page(), "customer")
        maker = errors.watch(browser.new_context(viewport=NARROW).new_page(), "coordinator")
        with screenshots_on_failure(
            {"customer": customer, "coordinator": maker}, tmp_path, "backoffice"
        ):
            customer_writes(customer, base, customer_name, f"Hello {marker}")
            sign_in(maker, base, "coordinator")
            open_conversation(maker, customer_name)
            # The header, with the Approvals button, still fits.
            assert maker.evaluate(
                "() => { const t = document.querySelector('.topbar');"
                " return t.scrollWidth <= t.clientWidth; }"
            )
            # Narrow: the panel waits behind the header's button.
            assert not maker.is_visible("#bo-panel")
            assert maker.get_attribute("#bo-toggle", "aria-expanded") == "false"
            maker.focus("#bo-toggle")
            maker.keyboard.press("Enter")
            maker.wait_for_selector("#bo-panel:not([hidden])", timeout=TIMEOUT_MS)
            assert maker.get_attribute("#bo-toggle", "aria-expanded") == "true"
            maker.locator("#bo-link", has_text="Not linked").wait_for(timeout=TIMEOUT_MS)
            box = maker.locator("#bo-panel").bounding_box()
            assert box is not None and box["width"] <= NARROW["width"]
            # The search field is reachable with Tab, and Escape closes the panel (not the
            # conversation), giving focus back to the button.
            maker.focus("#bo-search-q")
            maker.keyboard.press("Escape")
            maker.wait_for_selector("#bo-panel[hidden]", state="attached", timeout=TIMEOUT_MS)
            assert maker.evaluate("() => document.activeElement.id") == "bo-toggle"
            assert maker.is_visible("#thread-main")
            # Alt+B opens it again.
            maker.keyboard.press("Alt+b")
            maker.wait_for_selector("#bo-panel:not([hidden])", timeout=TIMEOUT_MS)
    assert errors.errors == [], "\n".join(errors.errors)


def test_a_payment_case_shows_its_state_and_tasks(backoffice_hub, tmp_path):
    hub, _ = backoffice_hub
    base = hub.http
    errors = PageErrors()
    marker = uuid.uuid4().hex[:6]
    customer_name = f"Ana {marker}"
    subject = f"Transfer not received {marker}"
    with launch_chromium() as browser:
        customer = errors.watch(browser.new_context(viewport=WIDE).new_page(), "customer")
        maker = errors.watch(browser.new_context(viewport=WIDE).new_page(), "coordinator")
        with screenshots_on_failure(
            {"customer": customer, "coordinator": maker}, tmp_path, "backoffice"
        ):
            customer_writes(customer, base, customer_name, f"My transfer is lost {marker}")
            sign_in(maker, base, "coordinator")
            open_conversation(maker, customer_name)
            panel = maker.locator("#bo-panel")
            maker.fill("#bo-search-q", "garcia")
            maker.click("#bo-link .bo-search button[type=submit]")
            result = panel.locator('.bo-result[data-bank-user-id="U1001"]')
            result.wait_for(timeout=TIMEOUT_MS)
            result.get_by_role("button", name="Link").click()
            panel.locator('.bo-user[data-bank-user-id="U1001"]').wait_for(timeout=TIMEOUT_MS)

            # Consent: recorded with its evidence (required first), then revoked with a reason.
            consent = panel.locator("#bo-consent-section")
            consent.get_by_role("button", name="Record consent…").click()
            maker.wait_for_selector("#bo-consent-dialog[open]", timeout=TIMEOUT_MS)
            maker.click("#bo-consent-submit")
            assert maker.get_attribute("#bo-consent-evidence", "aria-invalid") == "true"
            maker.fill("#bo-consent-evidence", f"Customer wrote 'yes, do it for me' ({marker})")
            maker.fill("#bo-consent-reference", "chat")
            maker.click("#bo-consent-submit")
            maker.wait_for_selector("#bo-consent-dialog", state="hidden", timeout=TIMEOUT_MS)
            recorded = consent.locator("li.bo-consent")
            recorded.wait_for(timeout=TIMEOUT_MS)
            assert "Covers every on-behalf action" in recorded.text_content()
            recorded.get_by_role("button", name="Revoke…").click()
            maker.wait_for_selector("#bo-reason-dialog[open]", timeout=TIMEOUT_MS)
            maker.fill("#bo-reason-text", "Withdrawn by phone")
            maker.click("#bo-reason-submit")
            maker.wait_for_selector("#bo-reason-dialog", state="hidden", timeout=TIMEOUT_MS)
            consent.locator("summary", has_text="1 earlier (revoked or expired)").wait_for(
                timeout=TIMEOUT_MS
            )
            assert consent.locator("li.bo-consent:not(.bo-consent-old)").count() == 0

            panel.locator('li[data-action="payment_inquiry"] button.bo-action').click()
            maker.wait_for_selector("#bo-action-dialog[open]", timeout=TIMEOUT_MS)
            maker.fill("#bo-p-subject", subject)
            maker.click("#bo-action-submit")
            maker.wait_for_selector("#bo-action-dialog", state="hidden", timeout=TIMEOUT_MS)

            # No checker: opened at once, and the case card arrives by its event.
            card = panel.locator("#bo-cases li.bo-case")
            card.wait_for(timeout=TIMEOUT_MS)
            assert subject in card.text_content()
            assert card.locator(".bo-case-state").text_content().strip() != ""
            assert card.locator(".bo-task").count() >= 1
            maker.locator("#message-list .msg-bo", has_text=subject).first.wait_for(
                timeout=TIMEOUT_MS
            )
    assert errors.errors == [], "\n".join(errors.errors)
