"""Issue 7's browser story: a coordinator edits the opening hours and a customer then gets the
out-of-hours reply — in a real browser, against a real daphne with the demo seeded (global
hours in Europe/Madrid, open around the clock; the English autoreply "Thanks for writing.
Nobody is available right now; we open {next_opening} and will answer you then.").

The coordinator, on /coordinator/hours/, leaves the service open only from 09:00 to 10:00 on
the weekday three days from today (Madrid time), so it is closed now whatever the hour, and
saves.  A customer then writes on the bank's page (/webchat/, browser in Europe/Madrid): the
widget shows the hub's reply live, naming that opening, without a reload.  The coordinator's
console shows the conversation waiting in the queue, the reply as the bank's, and the
customer still waiting for a person.  No page may log a JavaScript error.
"""

from __future__ import annotations

import calendar
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser.support import (
    TIMEOUT_MS,
    WIDE,
    PageErrors,
    launch_chromium,
    screenshots_on_failure,
    sign_in,
    sign_in_to,
)

pytestmark = pytest.mark.e2e

PAGE = "/coordinator/hours/"
ZONE = "Europe/Madrid"


def _day_row(page: Any, weekday: int) -> Any:
    return page.locator(f'#weekly-grid .day-row[data-weekday="{weekday}"]')


def test_coordinator_closes_the_hub_and_a_customer_gets_the_out_of_hours_reply(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    marker = uuid.uuid4().hex[:6]
    customer_name = f"Noa {marker}"
    opening = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=3)
    open_day = opening.weekday()
    open_name = calendar.day_name[open_day]

    with launch_chromium() as browser:
        hours = errors.watch(browser.new_context(viewport=WIDE).new_page(), "hours")
        console = errors.watch(browser.new_context(viewport=WIDE).new_page(), "console")
        customer = errors.watch(
            browser.new_context(viewport=WIDE, timezone_id=ZONE, locale="en-GB").new_page(),
            "customer",
        )
        pages = {"hours": hours, "console": console, "customer": customer}
        with screenshots_on_failure(pages, tmp_path, "hours-autoreply"):
            # The coordinator's console is open, to watch the customer arrive.
            sign_in(console, base, "coordinator")

            # The weekly grid: open only 09:00-10:00 on one day, three days from now.
            sign_in_to(hours, base, PAGE, "coordinator", ready="#hours-main[data-ready=true]")
            assert hours.input_value("#time-zone") == ZONE
            for weekday in range(7):
                row = _day_row(hours, weekday)
                if weekday == open_day:
                    item = row.locator(".interval").first
                    item.locator(".iv-start").fill("09:00")
                    item.locator(".iv-end").fill("10:00")
                    item.locator(".iv-next").set_checked(False)
                else:
                    name = calendar.day_name[weekday]
                    row.get_by_role("button", name=f"Remove {name} interval 1").click()
                    assert row.locator(".day-closed").is_visible()
            hours.click("#schedule-save")
            hours.wait_for_function(
                "() => document.getElementById('save-status').textContent.startsWith('Saved')",
                timeout=TIMEOUT_MS,
            )

            # A customer writes: the hub answers out of hours, live in the widget.
            customer.goto(f"{base}/webchat/")
            customer.click("[data-hub-webchat] button.launcher")
            customer.fill("[data-hub-webchat] .name input", customer_name)
            question = f"Can I raise my card limit? {marker}"
            customer.fill("[data-hub-webchat] textarea", question)
            customer.press("[data-hub-webchat] textarea", "Enter")
            customer.locator(
                "[data-hub-webchat] .msg.mine:not(.pending)", has_text=marker
            ).wait_for(timeout=TIMEOUT_MS)
            reply = customer.locator(
                "[data-hub-webchat] .msg:not(.mine)", has_text="Nobody is available right now"
            )
            reply.wait_for(timeout=TIMEOUT_MS)
            text = reply.text_content()
            assert text.startswith("Thanks for writing. Nobody is available right now; we open ")
            # The next opening, in the customer's time zone (the schedule's here).
            assert open_name in text and "09:00" in text
            assert "will answer you then" in text
            # Told once, not once per message.
            assert customer.locator("[data-hub-webchat] .msg:not(.mine)").count() == 1

            # The coordinator's console: waiting in the queue, the reply shown as the bank's,
            # and the customer still waiting for a person.
            row = console.locator("#conv-list button.conv", has_text=customer_name)
            row.locator(".conv-status", has_text="In queue").wait_for(timeout=TIMEOUT_MS)
            row.locator(".conv-preview", has_text="Bank: Thanks for writing").wait_for(
                timeout=TIMEOUT_MS
            )
            assert row.locator(".wait").text_content().startswith("Waiting ")

    assert errors.errors == [], "\n".join(errors.errors)
