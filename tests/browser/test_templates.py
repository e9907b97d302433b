"""WhatsApp templates in a real browser: a customer wrote on WhatsApp (the stand-in) more than
24 hours ago; their operator opens the conversation, finds the composer disabled, picks an
approved template, fills its placeholders (the preview follows), sends it, and sees it on the
timeline with its delivery ticks, while the stand-in's customer receives it as a template.
No page may log a JavaScript error.

The hub is a daphne process on the embedded default with the demo seeded and its WhatsApp
settings pointing at a stand-in this module starts (and the stand-in's webhooks at the hub).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.support import FrameLog, PageErrors, launch_chromium, sign_in
from tests.chat.whatsapp_support import WEBHOOK_PATH, Standin, whatsapp_env
from tests.harness import HubProcess, free_port, hub_env, manage, migrate

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1280, "height": 800}
WA_ID = "34600555666"
CUSTOMER = "Lucía Pérez"
REFERENCE = "R-2025-0107"

# Puts the customer's last message 25 hours back (the window closed an hour ago) and prints
# who holds the conversation.
AGE_AND_OWNER = """
from datetime import timedelta
from django.utils import timezone
from chat.models import Conversation
c = Conversation.objects.get(customer__identities__external_id="{wa_id}")
Conversation.objects.filter(pk=c.pk).update(
    last_customer_message_at=timezone.now() - timedelta(hours=25))
print(c.operator.get_username())
"""


@pytest.fixture(scope="module")
def whatsapp_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, Standin]]:
    var_dir = tmp_path_factory.mktemp("browser-templates")
    port = free_port()
    with Standin(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", status_delay_seconds=0.05) as standin:
        env = hub_env(
            None, None, HUB_VAR_DIR=str(var_dir), HUB_DEMO="1", **whatsapp_env(standin.url)
        )
        migrate(env)
        manage(env, "demo_seed")
        with HubProcess(env, port=port, log_dir=var_dir) as hub:
            hub.test_env = env
            yield hub, standin


def test_operator_sends_a_template_once_the_window_has_closed(whatsapp_hub):
    hub, standin = whatsapp_hub
    answer = standin.customer_writes(WA_ID, text="Hola, ¿hay novedades?", name=CUSTOMER)
    assert answer["hub_status"] == 200
    owner = manage(hub.test_env, "shell", "-c", AGE_AND_OWNER.format(wa_id=WA_ID)).stdout
    username = owner.strip().splitlines()[-1]
    assert username in {"operator1", "operator2"}

    errors = PageErrors()
    with launch_chromium() as browser:
        page = errors.watch(browser.new_context(viewport=VIEWPORT).new_page(), username)
        frames = FrameLog(page)
        sign_in(page, hub.http, username)
        page.click(f"#conv-list button.conv >> text={CUSTOMER}")
        page.locator("#message-list .msg-in", has_text="novedades").wait_for(timeout=TIMEOUT_MS)

        # The window is closed: the composer is disabled and says why; no countdown.
        assert page.is_disabled("#composer-text")
        assert page.is_disabled("#send")
        assert "24-hour window closed" in page.text_content("#thread-banner")
        assert page.is_hidden("#window-countdown")

        # The approved templates are offered; pick the Spanish claim follow-up.
        panel = page.locator("#tpl-panel")
        panel.wait_for(timeout=TIMEOUT_MS)
        page.wait_for_selector("#tpl-select", timeout=TIMEOUT_MS)
        labels = page.locator("#tpl-select option").all_text_contents()
        assert all("draft" not in label for label in labels)
        value = page.locator("#tpl-select option", has_text="claim_follow_up · es").get_attribute(
            "value"
        )
        page.select_option("#tpl-select", value)
        # One field per placeholder, each with its example value.
        assert page.locator("#tpl-form input").count() == 3
        assert page.get_attribute("#tpl-p1", "placeholder") == "Ana"
        assert "Example: R-2024-0042" in page.text_content("#tpl-form")
        assert page.is_disabled("#tpl-send")  # nothing filled in yet

        page.fill("#tpl-p0", REFERENCE)
        page.fill("#tpl-p1", "Lucía")
        assert "{{2}}" in page.text_content("#tpl-preview")
        page.fill("#tpl-p2", REFERENCE)
        preview = page.text_content("#tpl-preview")
        assert f"Su reclamación {REFERENCE}" in preview
        assert f"Hola Lucía, le escribimos sobre su reclamación {REFERENCE}" in preview
        assert "{{" not in preview

        page.click("#tpl-send")
        sent = page.locator("#message-list .msg-out", has_text="Hola Lucía, le escribimos")
        sent.wait_for(timeout=TIMEOUT_MS)
        # Its delivery ticks follow the provider's callbacks.
        sent.locator(".msg-status[data-status=delivered], .msg-status[data-status=read]").wait_for(
            timeout=TIMEOUT_MS
        )
        assert sent.locator(".bubble-text").text_content().startswith(f"Su reclamación {REFERENCE}")
        # The form is ready for another one, and the composer is still closed.
        assert page.input_value("#tpl-p0") == ""
        assert page.is_disabled("#composer-text")
        assert page.locator("#notices .notice-error").count() == 0

        # "New conversation" finds the customer by number and points at the open one.
        page.click("#outreach-open")
        page.fill("#outreach-search", WA_ID[-6:])
        found = page.locator("#outreach-results .outreach-customer", has_text=CUSTOMER)
        found.wait_for(timeout=TIMEOUT_MS)
        assert "Already open with you" in found.text_content()
        page.wait_for_selector("#outreach-tpl-select", timeout=TIMEOUT_MS)
        assert page.is_disabled("#outreach-send")  # no customer picked
        found.click()
        page.locator("#outreach-dialog").wait_for(state="hidden", timeout=TIMEOUT_MS)
        assert page.text_content("#thread-title") == CUSTOMER

        sends = [f for f in frames.frames_sent() if f.get("type") == "template.send"]
        assert len(sends) == 1
        assert sends[0]["parameters"] == [REFERENCE, "Lucía", REFERENCE]

    [received] = standin.outbound(WA_ID)
    assert received["type"] == "template"
    assert received["template"]["name"] == "claim_follow_up"
    assert received["template"]["language"] == {"code": "es"}
    assert received["template"]["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": REFERENCE}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Lucía"}, {"type": "text", "text": REFERENCE}],
        },
    ]
    assert errors.errors == [], "\n".join(errors.errors)
    assert "Traceback" not in hub.log(), hub.log()[-3000:]
