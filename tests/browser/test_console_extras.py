"""The console's working aids in a real browser, against a real daphne with the demo seeded:
waiting times, search and sort in the conversation list, the queue each user may see, the
opt-in alerts for a new query (desktop notification and a WebAudio tone), and the keyboard
shortcuts with their help overlay.  No page may log a JavaScript error.

The notification and audio APIs are Chromium's own; an init script only wraps them to count
what the page asked for (``window.__hub``), since a headless browser shows and plays nothing.

demo_seed: operator1 "Omar One" serves Payments and Follow-up and holds Ana García
(Payments) and Chen Li (Follow-up); operator2 "Olga Two" holds Ben Müller (Claims).  The web
chat's default type is Follow-up.  operator2 goes offline first, so new conversations can only
go to operator1 (or wait, while operator1 is offline too).
"""

from __future__ import annotations

import uuid
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
)

pytestmark = pytest.mark.e2e

# The operator's queue line is polled every 10 s: allow two rounds.
QUEUE_POLL_TIMEOUT_MS = 25_000
NO_QUEUE_FOR_ME = "Nobody waits in the queue for your types"

# Counts what the page asks of the Notification and WebAudio APIs, then lets the real
# implementation run.
RECORDER = """
(() => {
  const hub = (window.__hub = { notes: [], asked: 0, tones: 0 });
  const Real = window.Notification;
  if (Real) {
    function Recorded(title, options) {
      hub.notes.push({ title: String(title), body: (options && options.body) || "" });
      return new Real(title, options);
    }
    Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
    Recorded.requestPermission = (...args) => {
      hub.asked += 1;
      return Real.requestPermission(...args);
    };
    window.Notification = Recorded;
  }
  const Ctx = window.AudioContext;
  if (Ctx) {
    const create = Ctx.prototype.createOscillator;
    Ctx.prototype.createOscillator = function (...args) {
      hub.tones += 1;
      return create.apply(this, args);
    };
  }
})();
"""


def _row(page: Any, name: str) -> Any:
    return page.locator("#conv-list button.conv", has_text=name)


def _visible_names(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#conv-list li:not([hidden]) button.conv .conv-name",
        "nodes => nodes.map(n => n.textContent)",
    )


def _go_offline(page: Any) -> None:
    page.select_option("#presence", "offline")
    page.wait_for_selector("#presence[aria-busy=false]", timeout=TIMEOUT_MS)
    assert page.input_value("#presence") == "offline"


def _customer_writes(browser: Any, errors: PageErrors, base: str, name: str, text: str) -> Any:
    page = errors.watch(browser.new_context(viewport=WIDE).new_page(), name)
    page.goto(f"{base}/webchat/")
    page.click("[data-hub-webchat] button.launcher")
    page.fill("[data-hub-webchat] .name input", name)
    page.fill("[data-hub-webchat] textarea", text)
    page.press("[data-hub-webchat] textarea", "Enter")
    page.locator("[data-hub-webchat] .msg.mine:not(.pending)", has_text=text).wait_for(
        timeout=TIMEOUT_MS
    )
    return page


def _hub(page: Any) -> dict[str, Any]:
    return page.evaluate("() => window.__hub")


def test_list_search_sort_queue_and_new_query_alerts(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    marker = uuid.uuid4().hex[:6]
    first, second = f"Ivo {marker}", f"Jade {marker}"

    with launch_chromium() as browser:
        op2 = errors.watch(browser.new_context(viewport=WIDE).new_page(), "operator2")
        op1_context = browser.new_context(viewport=WIDE)
        op1_context.grant_permissions(["notifications"], origin=base)
        op1_context.add_init_script(RECORDER)
        op1 = errors.watch(op1_context.new_page(), "operator1")
        coord_context = browser.new_context(viewport=WIDE)
        coord_context.add_init_script(RECORDER)
        coord = errors.watch(coord_context.new_page(), "coordinator")
        pages = {"operator1": op1, "operator2": op2, "coordinator": coord}
        with screenshots_on_failure(pages, tmp_path, "console-extras"):
            sign_in(op2, base, "operator2")
            _go_offline(op2)

            # operator1: their queue line, and alerts switched on (the permission was granted
            # to this browser already, so nothing is asked).
            sign_in(op1, base, "operator1")
            op1.locator("#queue-info", has_text=NO_QUEUE_FOR_ME).wait_for(timeout=TIMEOUT_MS)
            assert op1.is_hidden("#conv-view-field")  # operators list only their own
            toggle = op1.locator("#notify-toggle")
            assert toggle.get_attribute("aria-pressed") == "false"
            assert toggle.text_content().strip() == "Alerts off"
            toggle.click()
            assert toggle.get_attribute("aria-pressed") == "true"
            assert toggle.text_content().strip() == "Alerts on"
            assert op1.evaluate("localStorage.getItem('hub.console.notify')") == "true"
            assert _hub(op1)["asked"] == 0
            _go_offline(op1)

            # The coordinator: the permission is asked on the click, never before.
            sign_in(coord, base, "coordinator")
            assert coord.is_visible("#conv-view-field")
            coord.locator("#queue-info", has_text="Nobody waits in the queue").wait_for(
                timeout=TIMEOUT_MS
            )
            coord.wait_for_timeout(300)
            assert _hub(coord)["asked"] == 0
            coord.click("#notify-toggle")
            coord.wait_for_function("() => window.__hub.asked === 1", timeout=TIMEOUT_MS)
            assert coord.get_attribute("#notify-toggle", "aria-pressed") == "true"

            # Nobody online: the first customer waits in the queue.
            _customer_writes(browser, errors, base, first, f"Where is my card? {marker}")
            queued = _row(coord, first)
            queued.locator(".conv-status", has_text="In queue").wait_for(timeout=TIMEOUT_MS)
            coord.locator("#queue-info", has_text="1 conversation waits in the queue").wait_for(
                timeout=TIMEOUT_MS
            )
            assert coord.locator("#conv-view option[value=queue]").text_content() == (
                "In the queue (1)"
            )
            # A new query in the queue rang the coordinator's tone (no notification: the
            # headless browser did not grant the permission).
            coord.wait_for_function("() => window.__hub.tones > 0", timeout=TIMEOUT_MS)
            assert coord.get_attribute("#notify-toggle", "data-alerts") == "1"
            assert _hub(coord)["notes"] == []
            # "In the queue" shows only the queue.
            coord.select_option("#conv-view", "queue")
            assert _visible_names(coord) == [first]
            assert coord.text_content("#list-count").startswith("1/")
            coord.select_option("#conv-view", "all")
            assert first in _visible_names(coord) and "Ben Müller" in _visible_names(coord)

            # operator1 (offline) sees the queue of the types they serve.
            op1.locator(
                "#queue-info", has_text="1 conversation waits in the queue for your types"
            ).wait_for(timeout=QUEUE_POLL_TIMEOUT_MS)
            assert "longest" in op1.text_content("#queue-info")
            assert op1.get_attribute("#queue-info", "data-waiting") == "1"

            # Going online pulls it: a new query for operator1, announced by notification
            # and tone; the queue empties everywhere.
            op1.select_option("#presence", "online")
            row = _row(op1, first)
            row.wait_for(timeout=TIMEOUT_MS)
            op1.wait_for_function("() => window.__hub.notes.length === 1", timeout=TIMEOUT_MS)
            note = _hub(op1)["notes"][0]
            assert note["title"] == f"New query: {first}"
            assert "Web chat" in note["body"]
            assert _hub(op1)["tones"] > 0
            assert op1.get_attribute("#notify-toggle", "data-alerts") == "1"
            assert op1.text_content("#alert-status") == f"New query from {first}"
            op1.locator("#queue-info", has_text=NO_QUEUE_FOR_ME).wait_for(timeout=TIMEOUT_MS)
            queued.locator(".conv-status", has_text="Omar One").wait_for(timeout=TIMEOUT_MS)
            coord.locator("#queue-info", has_text="Nobody waits in the queue").wait_for(
                timeout=TIMEOUT_MS
            )

            # A second customer goes straight to operator1: another alert.
            _customer_writes(browser, errors, base, second, f"Transfer limit question {marker}")
            _row(op1, second).wait_for(timeout=TIMEOUT_MS)
            op1.wait_for_function("() => window.__hub.notes.length === 2", timeout=TIMEOUT_MS)
            assert _hub(op1)["notes"][1]["title"] == f"New query: {second}"

            # Both wait for an answer, and the time ticks.
            for name in (first, second):
                assert _row(op1, name).locator(".wait").text_content().startswith("Waiting ")
            # Newest activity first by default; "Longest waiting" puts the first customer on
            # top, then the second, then those already answered.
            names = _visible_names(op1)
            assert names.index(second) < names.index(first)
            op1.select_option("#conv-sort", "waiting")
            names = _visible_names(op1)
            assert names[:2] == [first, second]
            assert set(names[2:]) == {"Ana García", "Chen Li"}

            # Search: by name, accent-blind; by the newest message; by query type.
            op1.fill("#conv-search", "garcia")
            assert _visible_names(op1) == ["Ana García"]
            assert op1.text_content("#list-count") == "1/4"
            op1.fill("#conv-search", "transfer limit")
            assert _visible_names(op1) == [second]
            op1.fill("#conv-search", "follow-up")
            assert sorted(_visible_names(op1)) == sorted([first, second, "Chen Li"])
            op1.fill("#conv-search", f"nothing-like-this-{marker}")
            assert _visible_names(op1) == []
            assert op1.is_visible("#list-nomatch")
            # Escape clears the search.
            op1.press("#conv-search", "Escape")
            assert op1.input_value("#conv-search") == ""
            assert len(_visible_names(op1)) == 4
            assert op1.is_hidden("#list-nomatch")

            # The sort and the alerts are remembered in this browser.
            op1.reload()
            op1.wait_for_selector("#conn[data-state=live]", timeout=TIMEOUT_MS)
            assert op1.input_value("#conv-sort") == "waiting"
            assert op1.get_attribute("#notify-toggle", "aria-pressed") == "true"
            _row(op1, first).wait_for(timeout=TIMEOUT_MS)
            assert _visible_names(op1)[:2] == [first, second]

    assert errors.errors == [], "\n".join(errors.errors)


def test_keyboard_shortcuts_and_their_help(demo_hub, tmp_path):
    base = demo_hub.http
    errors = PageErrors()
    marker = uuid.uuid4().hex[:6]
    customer = f"Kim {marker}"

    with launch_chromium() as browser:
        op2 = errors.watch(browser.new_context(viewport=WIDE).new_page(), "operator2")
        op1 = errors.watch(browser.new_context(viewport=WIDE).new_page(), "operator1")
        pages = {"operator1": op1, "operator2": op2}
        with screenshots_on_failure(pages, tmp_path, "console-keys"):
            sign_in(op2, base, "operator2")
            _go_offline(op2)
            sign_in(op1, base, "operator1")
            if op1.input_value("#presence") != "online":
                op1.select_option("#presence", "online")
                op1.wait_for_selector("#presence[aria-busy=false]", timeout=TIMEOUT_MS)
            _customer_writes(browser, errors, base, customer, f"Hello {marker}")
            _row(op1, customer).wait_for(timeout=TIMEOUT_MS)

            # "?" opens the list of shortcuts; Escape closes it and focus comes back.
            op1.locator("#keys-open").focus()
            op1.keyboard.press("?")
            op1.wait_for_selector("#keys-dialog[open]", timeout=TIMEOUT_MS)
            help_text = op1.text_content("#keys-dialog")
            for line in (
                "Next / previous conversation",
                "Search the conversations",
                "Close the conversation with a reason",
                "Back-office panel",
            ):
                assert line in help_text
            op1.keyboard.press("Escape")
            op1.wait_for_selector("#keys-dialog:not([open])", state="attached")
            assert op1.evaluate("document.activeElement.id") == "keys-open"

            # Alt+↓ / Alt+↑ walk the list in its order and open each conversation.
            order = op1.eval_on_selector_all(
                "#conv-list li:not([hidden]) button.conv", "ns => ns.map(n => n.dataset.id)"
            )
            assert len(order) >= 3

            def selected() -> str | None:
                return op1.get_attribute("#conv-list button.conv[aria-current=true]", "data-id")

            op1.keyboard.press("Alt+ArrowDown")
            op1.wait_for_selector("#conv-list button.conv[aria-current=true]")
            assert selected() == order[0]
            # The reply box has the focus, and the shortcut works from there too.
            assert op1.evaluate("document.activeElement.id") == "composer-text"
            op1.keyboard.press("Alt+ArrowDown")
            assert selected() == order[1]
            op1.keyboard.press("Alt+ArrowUp")
            assert selected() == order[0]
            # "?" typed in the reply box is text, not the help.
            op1.keyboard.type("?")
            assert op1.input_value("#composer-text") == "?"
            assert op1.is_hidden("#keys-dialog")
            op1.fill("#composer-text", "")

            # Ctrl+K: the search box; Esc clears it; Enter opens the first match.
            op1.locator("#messages").focus()
            op1.keyboard.press("Control+k")
            assert op1.evaluate("document.activeElement.id") == "conv-search"
            op1.keyboard.type(marker)
            assert _visible_names(op1) == [customer]
            op1.keyboard.press("Enter")
            assert selected() == _row(op1, customer).get_attribute("data-id")
            op1.keyboard.press("Control+k")
            op1.keyboard.press("Escape")
            assert op1.input_value("#conv-search") == ""

            # Alt+W opens the conversation that waits longest (the top of "Longest waiting").
            op1.select_option("#conv-sort", "waiting")
            longest = op1.get_attribute("#conv-list li:not([hidden]) button.conv", "data-id")
            op1.locator("#messages").focus()
            op1.keyboard.press("Alt+w")
            op1.wait_for_function(
                "(id) => document.querySelector('#conv-list button.conv[aria-current=true]')"
                "?.dataset.id === id",
                arg=longest,
                timeout=TIMEOUT_MS,
            )

            # Alt+R: back to the reply box.  Alt+C: the close dialog (Escape cancels).
            op1.locator("#messages").focus()
            op1.keyboard.press("Alt+r")
            assert op1.evaluate("document.activeElement.id") == "composer-text"
            op1.keyboard.press("Alt+c")
            op1.wait_for_selector("#close-dialog[open]", timeout=TIMEOUT_MS)
            op1.keyboard.press("Escape")
            op1.wait_for_selector("#close-dialog:not([open])", state="attached")
            assert op1.evaluate("document.activeElement.id") == "composer-text"

            # Alt+N: a new WhatsApp conversation.
            op1.keyboard.press("Alt+n")
            op1.wait_for_selector("#outreach-dialog[open]", timeout=TIMEOUT_MS)
            op1.keyboard.press("Escape")
            op1.wait_for_selector("#outreach-dialog:not([open])", state="attached")

            # Close with the keyboard only: Alt+C, choose a reason, Enter.
            target = selected()
            assert target
            op1.keyboard.press("Alt+c")
            op1.wait_for_selector("#close-dialog[open]", timeout=TIMEOUT_MS)
            op1.locator("#close-reason").focus()
            op1.keyboard.press("ArrowDown")
            op1.locator("#close-confirm").focus()
            op1.keyboard.press("Enter")
            op1.wait_for_selector(
                f'#conv-list button.conv[data-id="{target}"]', state="detached", timeout=TIMEOUT_MS
            )

            # On a narrow screen everything stays on the page, and Ctrl+K brings the list
            # back from a conversation.
            op1.set_viewport_size(NARROW)
            op1.keyboard.press("Alt+ArrowDown")
            op1.wait_for_selector(".workspace[data-view=thread]", timeout=TIMEOUT_MS)
            assert op1.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
            assert op1.evaluate(
                "() => { const t = document.querySelector('.topbar');"
                " return t.scrollWidth <= t.clientWidth; }"
            )
            for selector in ("#notify-toggle", "#presence"):
                box = op1.locator(selector).bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= NARROW["width"]
            # The shortcuts button gives way on a phone-wide screen; "?" still opens the list.
            assert op1.is_hidden("#keys-open")
            op1.locator("#messages").focus()
            op1.keyboard.press("?")
            op1.wait_for_selector("#keys-dialog[open]", timeout=TIMEOUT_MS)
            op1.keyboard.press("Escape")
            op1.wait_for_selector("#keys-dialog:not([open])", state="attached")
            op1.keyboard.press("Control+k")
            assert op1.is_visible("#conv-search")
            assert op1.evaluate("document.activeElement.id") == "conv-search"
            op1.screenshot(path=str(tmp_path / "narrow.png"))

    assert errors.errors == [], "\n".join(errors.errors)
