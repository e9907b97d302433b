"""The analytics dashboard (/dashboard/) in a real browser, against a daphne process on the
embedded default with the demo seeded plus a few closed conversations: four three days ago
and two a hundred days ago.

A coordinator opens the page: the live panel and every chart are drawn from the JSON
endpoints (the bars carry the endpoint's numbers); changing the period with the keyboard
redraws them and moves the CSV link, which downloads the same figures; a period ending
before it starts shows the server's error next to the field; on a 400 px screen nothing
overflows sideways.  An operator gets the "not allowed" page.  No JavaScript error.

Chromium logs every 4xx answer as a console error; the page asks for a 400 on purpose
(the bad period) and the operator's page is a 403 document, so exactly those lines are
allowed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.support import (
    TIMEOUT_MS,
    PageErrors,
    get_json,
    launch_chromium,
    running_demo_hub,
    screenshots_on_failure,
    sign_in_to,
)
from tests.harness import PYTHON, ROOT, HubProcess

pytestmark = pytest.mark.e2e

PAGE = "/dashboard/"
ALLOWED_HTTP = (400, 403)  # statuses the tests provoke on purpose

# Closed conversations at fixed offsets from today (UTC), on the demo's types and reasons.
SEED = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
django.setup()
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from chat.models import Conversation, Customer
from routing.models import QueryType, ResolutionReason

operator = get_user_model().objects.get(username="operator1")
types = list(QueryType.objects.order_by("menu_position")[:2])
reason = ResolutionReason.objects.order_by("position").first()
midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
plan = [(3, types[0], "webchat"), (3, types[0], "webchat"), (3, types[1], "whatsapp"),
        (3, types[1], "webchat"), (100, types[0], "webchat"), (100, types[1], "whatsapp")]
for n, (days, qtype, channel) in enumerate(plan):
    opened = midnight - timedelta(days=days) + timedelta(hours=10, minutes=n)
    c = Conversation.objects.create(
        customer=Customer.objects.create(display_name=f"Dashboard {n}"), channel=channel,
        status="closed", operator=operator, query_type=qtype, resolution=reason)
    Conversation.objects.filter(pk=c.pk).update(
        created_at=opened, assigned_at=opened, closed_at=opened + timedelta(minutes=30),
        first_operator_reply_at=opened + timedelta(seconds=60 * (n + 1)))
"""


def seed_closed_conversations(env: dict[str, str]) -> None:
    seeded = subprocess.run(
        [PYTHON, "-c", SEED], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert seeded.returncode == 0, seeded.stderr[-3000:]


@pytest.fixture(scope="module")
def dashboard_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    var_dir = tmp_path_factory.mktemp("dashboard-hub")
    with running_demo_hub(var_dir, before_start=seed_closed_conversations) as hub:
        yield hub


def open_dashboard(page: Any, base: str, username: str) -> None:
    sign_in_to(page, base, PAGE, username)


def ready(page: Any) -> None:
    page.wait_for_selector("#dashboard-main[data-ready=true]", timeout=TIMEOUT_MS)
    page.wait_for_selector("#dashboard-main[data-live-at]", timeout=TIMEOUT_MS)


def bars(page: Any, chart: str) -> dict[str, int]:
    """A chart's bars as {label: value}, read from the drawn SVG."""
    return page.eval_on_selector_all(
        f"#{chart} .bar-row",
        "rows => Object.fromEntries(rows.map(r => [r.dataset.label, Number(r.dataset.value)]))",
    )


def test_coordinator_reads_the_dashboard_changes_the_period_and_exports(dashboard_hub, tmp_path):
    base = dashboard_hub.http
    errors = PageErrors()
    today = datetime.now(UTC).date()
    with launch_chromium() as browser:
        page = errors.watch(
            browser.new_context(viewport={"width": 1280, "height": 800}).new_page(), "coord"
        )
        with screenshots_on_failure({"coord": page}, tmp_path, "dashboard"):
            open_dashboard(page, base, "coordinator")
            ready(page)
            # The staff navigation marks this page.
            assert page.get_attribute("a[data-page=dashboard]", "aria-current") == "page"
            # The default period: the last 30 days, today included.
            start, end = today - timedelta(days=29), today + timedelta(days=1)
            expected = get_json(page, base, f"/api/dashboard/period/?from={start}&to={end}")
            total = expected["conversations"]["total"]
            assert total >= 4  # the four of three days ago, plus the demo's open ones
            assert page.text_content("#kpi-conversations") == f"{total:,}"
            assert bars(page, "chart-types") == {
                e["type"]: e["count"] for e in expected["conversations"]["by_type"]
            }
            assert bars(page, "chart-channels") == {
                e["label"]: e["count"] for e in expected["conversations"]["by_channel"]
            }
            assert bars(page, "chart-reasons") == {
                e["reason"]: e["count"] for e in expected["closes_by_reason"]
            }
            columns = page.eval_on_selector_all(
                "#chart-volume rect.column", "r => r.map(x => [x.dataset.start, +x.dataset.value])"
            )
            assert columns == [
                [e["start"], e["count"]] for e in expected["conversations"]["over_time"]
            ]
            live = get_json(page, base, "/api/dashboard/live/")
            assert page.text_content("#kpi-online") == str(live["online"])
            assert page.get_attribute("#period-csv", "href") == (
                f"/api/dashboard/period.csv?from={start}&to={end}"
            )

            # A hundred days ago only, typed and submitted with the keyboard.
            old = today - timedelta(days=100)
            page.fill("#period-from", old.isoformat())
            page.fill("#period-to", old.isoformat())
            page.select_option("#period-channel", "whatsapp")
            page.focus("#period-apply")
            page.keyboard.press("Enter")
            page.wait_for_selector(
                f"#dashboard-main[data-period-from='{old}'][aria-busy=false]", timeout=TIMEOUT_MS
            )
            assert page.text_content("#kpi-conversations") == "1"
            assert list(bars(page, "chart-channels").values()) == [1]
            assert page.text_content("#kpi-frt-median") == "6 min"  # the sixth: 6 x 60 s
            assert f"from={old}" in page.url and "channel=whatsapp" in page.url
            href = page.get_attribute("#period-csv", "href")
            assert href == (
                f"/api/dashboard/period.csv?from={old}&to={old + timedelta(days=1)}"
                "&channel=whatsapp"
            )
            exported = page.request.get(base + href)
            assert exported.status == 200
            assert exported.headers["content-type"].startswith("text/csv")
            rows = exported.text().splitlines()
            assert rows[0] == "section,item,detail,value"
            assert "conversations,total,,1" in rows
            assert "first_response,median_s,,360.0" in rows

            # A period that ends before it starts: the server's message at the field.
            page.fill("#period-from", today.isoformat())
            page.fill("#period-to", (today - timedelta(days=5)).isoformat())
            page.click("#period-apply")
            page.wait_for_selector("#period-to-error:not([hidden])", timeout=TIMEOUT_MS)
            assert "'to' must be after 'from'" in page.text_content("#period-to-error")
            assert page.get_attribute("#period-to", "aria-invalid") == "true"
            # A preset puts it right.
            page.click(".presets [data-days='7']")
            page.wait_for_selector("#period-to-error[hidden]", state="attached", timeout=TIMEOUT_MS)
            page.wait_for_function(
                "() => document.getElementById('period-status').textContent.includes('from')",
                timeout=TIMEOUT_MS,
            )
            # The live panel keeps polling: a newer snapshot arrives by itself.
            first = page.get_attribute("#dashboard-main", "data-live-at")
            page.wait_for_function(
                "(first) => document.getElementById('dashboard-main').dataset.liveAt !== first",
                arg=first,
                timeout=TIMEOUT_MS,
            )

        narrow = errors.watch(
            browser.new_context(viewport={"width": 400, "height": 800}).new_page(), "narrow"
        )
        with screenshots_on_failure({"narrow": narrow}, tmp_path, "dashboard"):
            open_dashboard(narrow, base, "admin")
            ready(narrow)
            assert narrow.evaluate("document.documentElement.scrollWidth") <= 400
            assert narrow.locator("#chart-types svg").count() == 1

        operator = errors.watch(browser.new_context().new_page(), "operator")
        open_dashboard(operator, base, "operator1")
        assert "not allowed to read the dashboard" in operator.text_content("main")
    assert errors.unexpected(ALLOWED_HTTP) == []
    assert any("status of 400" in e for e in errors.errors)
