"""The coordinators' opening-hours page (/coordinator/hours/) in a real browser, against the
seeded demo (global hours in Europe/Madrid, open around the clock; Christmas Day closed
every year).

A coordinator follows the console's link, edits the weekly grid and saves (the REST API then
shows the change); an admin who loaded the same version and saves later gets the conflict
message and reloads; invalid input shows the server's precise error next to the field; a
special day is added from the calendar with the keyboard; the holidays import previews and
imports; the date preview says "Open now until 18:00" / "Closed — next opening Monday
09:00".  An operator is refused.  No JavaScript error on any page, at 1280x800 and 400 px.

Chromium logs every 4xx answer as a console error ("Failed to load resource: … 409"); the
page asks for those on purpose (validation, stale version), so exactly those lines are
allowed, and only their status codes.
"""

from __future__ import annotations

import contextlib
import re
from datetime import date, timedelta
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
)

pytestmark = pytest.mark.e2e

PAGE = "/coordinator/hours/"
ALLOWED_HTTP = (400, 409)  # statuses the tests provoke on purpose


def open_hours(page: Any, base: str, username: str) -> None:
    sign_in_to(page, base, PAGE, username, ready="#hours-main[data-ready=true]")


def day_row(page: Any, weekday: int) -> Any:
    return page.locator(f'#weekly-grid .day-row[data-weekday="{weekday}"]')


def set_interval(row: Any, index: int, start: str, end: str, *, next_day: bool = False) -> None:
    item = row.locator(".interval").nth(index)
    item.locator(".iv-start").fill(start)
    item.locator(".iv-end").fill(end)
    item.locator(".iv-next").set_checked(next_day)


def save(page: Any) -> None:
    page.click("#schedule-save")


def saved_version(page: Any, version: int) -> None:
    page.wait_for_function(
        f"() => document.getElementById('save-status').textContent === 'Saved · version {version}'",
        timeout=TIMEOUT_MS,
    )


def preview(page: Any, day: str, at: str) -> str:
    page.fill("#preview-date", day)
    page.fill("#preview-time", at)
    page.select_option("#preview-scope", "")
    previous = page.text_content("#preview-detail")
    page.click("#preview-run")
    page.wait_for_function(
        "(previous) => { const box = document.getElementById('preview-result');"
        " return !box.hidden && document.getElementById('preview-detail').textContent"
        " !== previous; }",
        arg=previous,
        timeout=TIMEOUT_MS,
    )
    return page.text_content("#preview-sentence")


def test_coordinator_edits_hours_previews_and_meets_a_concurrent_edit(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        coordinator = errors.watch(browser.new_context(viewport=WIDE).new_page(), "coordinator")
        admin = errors.watch(browser.new_context(viewport=WIDE).new_page(), "admin")
        pages = {"coordinator": coordinator, "admin": admin}
        with screenshots_on_failure(pages, tmp_path, "hours"):
            # The console's header links the page for those who may edit the hours.
            sign_in(coordinator, base, "coordinator")
            coordinator.click("#hours-link")
            coordinator.wait_for_url(f"**{PAGE}")
            coordinator.wait_for_selector("#hours-main[data-ready=true]", timeout=TIMEOUT_MS)
            assert coordinator.input_value("#scope") == ""
            assert coordinator.input_value("#time-zone") == "Europe/Madrid"
            assert "Version 1" in coordinator.text_content("#scope-meta")
            # The seed is open around the clock: each day 00:00-00:00, flagged overnight.
            monday = day_row(coordinator, 0)
            assert monday.locator(".midnight-flag").is_visible()

            # The admin loads the same version 1 now, and will save later.
            open_hours(admin, base, "admin")

            # Monday 09:00-13:00 and 14:00-18:00; Sunday closed.
            set_interval(monday, 0, "09:00", "13:00")
            assert monday.locator(".midnight-flag").is_hidden()
            monday.get_by_role("button", name="Add an interval on Monday").click()
            assert monday.locator(".interval").count() == 2
            set_interval(monday, 1, "14:00", "18:00")
            sunday = day_row(coordinator, 6)
            sunday.get_by_role("button", name="Remove Sunday interval 1").click()
            assert sunday.locator(".day-closed").is_visible()
            assert coordinator.text_content("#save-status") == "Unsaved changes"
            save(coordinator)
            saved_version(coordinator, 2)
            assert "Version 2" in coordinator.text_content("#scope-meta")

            # The REST API shows the change.
            schedule = get_json(coordinator, base, "/api/hours/schedule/")
            assert schedule["version"] == 2
            weekly = {(i["weekday"], i["start"], i["end"]) for i in schedule["weekly"]}
            assert {(0, "09:00", "13:00"), (0, "14:00", "18:00")} <= weekly
            assert not [i for i in schedule["weekly"] if i["weekday"] == 6]

            # The date preview, from the saved hours (Europe/Madrid local times).
            assert preview(coordinator, "2027-03-01", "17:30") == "Open now until 18:00"
            detail = coordinator.text_content("#preview-detail")
            assert detail.startswith("Monday 1 March 2027, 17:30 (Europe/Madrid")
            assert "Weekly hours for Monday: 09:00\u201313:00, 14:00\u201318:00" in detail
            assert preview(coordinator, "2027-02-28", "12:00") == (
                "Closed — next opening Monday 09:00"
            )
            assert preview(coordinator, "2027-03-01", "13:30") == "Closed — next opening 14:00"

            # The admin, still on version 1, saves: a clear conflict, nothing overwritten.
            set_interval(day_row(admin, 2), 0, "08:00", "20:00")
            save(admin)
            admin.wait_for_selector("#conflict:not([hidden])", timeout=TIMEOUT_MS)
            conflict = admin.text_content("#conflict")
            assert "Someone else changed these opening hours" in conflict
            assert "They saved version 2 after you loaded version 1" in conflict
            assert "Your changes are not saved" in conflict
            assert admin.evaluate("document.activeElement.id") == "conflict"
            assert get_json(admin, base, "/api/hours/schedule/")["version"] == 2
            # Reload shows the coordinator's hours; the admin's next save goes through.
            admin.click("#conflict-reload")
            admin.wait_for_selector("#conflict[hidden]", state="attached", timeout=TIMEOUT_MS)
            assert "Version 2" in admin.text_content("#scope-meta")
            assert day_row(admin, 0).locator(".interval").count() == 2
            assert day_row(admin, 0).locator(".iv-end").nth(1).input_value() == "18:00"
            set_interval(day_row(admin, 2), 0, "08:00", "20:00")
            save(admin)
            saved_version(admin, 3)

            invalid_input_shows_the_server_error(coordinator, base)
        assert errors.unexpected(ALLOWED_HTTP) == []


def invalid_input_shows_the_server_error(page: Any, base: str) -> None:
    """The coordinator is still on version 2 (the admin saved 3): errors come first, since
    the server checks the input before the version."""
    # An interval ending before it starts, without "Next day".
    wednesday = day_row(page, 2)
    set_interval(wednesday, 0, "18:00", "09:00")
    save(page)
    item = wednesday.locator(".interval").first
    error = item.locator(".field-error")
    error.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert error.text_content() == (
        "Wednesday interval 1: 18:00-09:00 ends before it starts; tick “Next day” to run "
        "past midnight."
    )
    assert item.locator(".iv-start").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.classList.contains('iv-start')")

    # Overlapping intervals: the later one carries the message, the other is marked.
    set_interval(wednesday, 0, "09:00", "13:00")
    wednesday.get_by_role("button", name="Add an interval on Wednesday").click()
    set_interval(wednesday, 1, "12:00", "15:00")
    save(page)
    second = wednesday.locator(".interval").nth(1)
    second.locator(".field-error").wait_for(state="visible", timeout=TIMEOUT_MS)
    assert second.locator(".field-error").text_content() == (
        "Wednesday interval 2 (Wednesday 12:00\u201315:00) overlaps Wednesday interval 1 "
        "(Wednesday 09:00\u201313:00)."
    )
    assert "is-overlapped" in wednesday.locator(".interval").first.get_attribute("class")
    assert item.locator(".field-error").is_hidden()  # the earlier error is gone

    # An unknown time zone, shown under the time zone field.
    set_interval(wednesday, 1, "14:00", "18:00")
    page.fill("#time-zone", "Europe/Madird")
    save(page)
    page.wait_for_selector("#time-zone-error:not([hidden])", timeout=TIMEOUT_MS)
    assert page.text_content("#time-zone-error") == (
        "'Europe/Madird' is not a known IANA time zone (e.g. Europe/Madrid)."
    )
    assert page.get_attribute("#time-zone", "aria-invalid") == "true"
    # Nothing was saved by any of these.
    assert get_json(page, base, "/api/hours/schedule/")["version"] == 3

    # Valid again, but loaded at version 2: the conflict, not an error.
    page.fill("#time-zone", "Europe/Madrid")
    save(page)
    page.wait_for_selector("#conflict:not([hidden])", timeout=TIMEOUT_MS)
    assert "They saved version 3 after you loaded version 2" in page.text_content("#conflict")


def focused_date(page: Any) -> str:
    return page.evaluate("document.activeElement.getAttribute('data-date')")


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        with contextlib.suppress(ValueError):
            return date(year, month, min(day.day, last))
    raise AssertionError("unreachable")


def test_special_day_from_the_calendar_the_holidays_import_and_a_narrow_screen(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=NARROW).new_page(), "coordinator")
        with screenshots_on_failure({"coordinator": page}, tmp_path, "hours"):
            open_hours(page, base, "coordinator")
            # Nothing wider than the screen.
            assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]

            # Keyboard: the calendar has one tab stop; arrows and Page Down move the focus.
            page.locator("#cal-body button[tabindex='0']").focus()
            start = date.fromisoformat(focused_date(page))
            page.keyboard.press("ArrowRight")
            assert focused_date(page) == (start + timedelta(days=1)).isoformat()
            page.keyboard.press("ArrowDown")
            assert focused_date(page) == (start + timedelta(days=8)).isoformat()
            page.keyboard.press("PageDown")
            target = add_months(start + timedelta(days=8), 1)
            assert focused_date(page) == target.isoformat()
            month_title = f"{target:%B} {target.year}"
            assert page.text_content("#cal-month") == month_title
            page.keyboard.press("Home")
            target -= timedelta(days=target.weekday())
            assert focused_date(page) == target.isoformat()
            while (
                page.locator(f'#cal-body button[data-date="{target}"]')
                .get_attribute("class")
                .count("is-")
            ):  # a seeded special day (Christmas): take the next free one
                page.keyboard.press("ArrowRight")
                target += timedelta(days=1)
            assert page.locator("#cal-body button[tabindex='0']").count() == 1

            # Enter opens the day: special hours 10:00-14:00.
            page.keyboard.press("Enter")
            page.wait_for_selector("#day-dialog[open]", timeout=TIMEOUT_MS)
            assert page.text_content("#day-title") == "Add a special day"
            assert page.input_value("#day-date") == target.isoformat()
            page.fill("#day-label", "Staff training")
            page.check("#day-hours")
            interval = page.locator("#day-intervals .interval").first
            interval.locator(".iv-start").fill("10:00")
            interval.locator(".iv-end").fill("14:00")
            page.click("#day-save")
            page.wait_for_selector("#day-dialog:not([open])", state="attached", timeout=TIMEOUT_MS)
            cell = page.locator(f'#cal-body button[data-date="{target}"].is-hours')
            cell.wait_for(timeout=TIMEOUT_MS)
            label = cell.get_attribute("aria-label")
            assert "special hours 10:00\u201314:00, Staff training" in label
            assert focused_date(page) == target.isoformat()  # focus back on the day
            listed = page.locator("#month-days .month-day", has_text="Staff training")
            assert "10:00\u201314:00" in listed.text_content()
            days = get_json(page, base, "/api/hours/special-days/")["special_days"]
            ours = [d for d in days if d["date"] == target.isoformat()]
            assert ours and ours[0]["label"] == "Staff training" and not ours[0]["closed"]
            assert ours[0]["intervals"] == [
                {"start": "10:00", "end": "14:00", "crosses_midnight": False}
            ]

            # The same date again: the server's conflict, next to the date.
            page.click("#day-add")
            page.wait_for_selector("#day-dialog[open]", timeout=TIMEOUT_MS)
            page.fill("#day-date", target.isoformat())
            page.click("#day-save")
            page.wait_for_selector("#day-date-error:not([hidden])", timeout=TIMEOUT_MS)
            assert page.text_content("#day-date-error") == (
                f"A special day on {target.isoformat()} (Staff training) already covers this date."
            )
            page.keyboard.press("Escape")
            page.wait_for_selector("#day-dialog:not([open])", state="attached", timeout=TIMEOUT_MS)

            # The preview sees the special day.
            assert preview(page, target.isoformat(), "11:00") == "Open now until 14:00"
            assert "Special day “Staff training”: 10:00\u201314:00" in page.text_content(
                "#preview-detail"
            )

            # The holidays import: country and year, the preview's count, then the import.
            page.select_option("#import-country", "ES")
            page.fill("#import-year", "2028")
            page.click("#import-preview")
            page.wait_for_selector("#import-result:not([hidden])", timeout=TIMEOUT_MS)
            summary = page.text_content("#import-summary")
            match = re.match(r"Spain \(ES\), 2028: (\d+) public holidays\. (\d+) new", summary)
            assert match, summary
            total, new = int(match.group(1)), int(match.group(2))
            assert new == total  # no special day in 2028 yet
            assert page.text_content("#import-run") == f"Import {new} holidays"
            page.click("#import-run")
            page.wait_for_selector("#import-result[hidden]", state="attached")
            page.wait_for_function(
                "() => document.getElementById('hours-notices').textContent.includes('Imported')",
                timeout=TIMEOUT_MS,
            )
            assert f"Imported {new} public holidays." in page.text_content("#hours-notices")
            # The calendar jumps to the first one: New Year's Day, closed.
            page.wait_for_function(
                "() => document.getElementById('cal-month').textContent === 'January 2028'",
                timeout=TIMEOUT_MS,
            )
            new_year = page.locator('#cal-body button[data-date="2028-01-01"].is-closed')
            new_year.wait_for(timeout=TIMEOUT_MS)
            assert "closed, New Year's Day" in new_year.get_attribute("aria-label")
            days = get_json(page, base, "/api/hours/special-days/")["special_days"]
            assert len([d for d in days if d["source"] == "holidays:ES"]) == new
            # A second preview: every date is taken now.
            page.click("#import-preview")
            page.wait_for_selector("#import-result:not([hidden])", timeout=TIMEOUT_MS)
            assert f"0 new; {total} already have a special day" in page.text_content(
                "#import-summary"
            )
            assert page.is_disabled("#import-run")
            assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
        assert errors.unexpected(ALLOWED_HTTP) == []


def test_an_operator_is_refused(demo_hub):
    base = demo_hub.http
    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=WIDE).new_page(), "operator1")
        sign_in(page, base, "operator1")
        assert page.locator("#hours-link").count() == 0
        response = page.goto(f"{base}{PAGE}")
        assert response.status == 403
        assert page.text_content("h1") == "No access to opening hours"
        assert page.locator("#schedule-form").count() == 0
        page.click("text=Back to the console")
        page.wait_for_url("**/console/")
        # The API says the same.
        assert page.request.get(f"{base}/api/hours/").status == 403
    # Chromium logs the 403 document itself.
    assert [e for e in errors.errors if "status of 403" not in e] == []
