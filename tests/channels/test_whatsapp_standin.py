"""The WhatsApp Cloud API stand-in, over real loopback HTTP.

A tiny aiohttp app plays the hub: it records every webhook and checks the signature itself
(never with the stand-in's helper), so these tests pin the contract in
docs/whatsapp-contract.md from the hub's side.  No Django, no database.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout, web

from chat.channels.whatsapp_standin import StandinConfig, StandinServer, run_standin

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
ACCESS_TOKEN = "test-access-token"
PHONE_NUMBER_ID = "100200300"
CUSTOMER = "34600111222"
WAIT_SECONDS = 5.0
DAY = 24 * 60 * 60
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Received:
    raw: bytes
    signature_ok: bool
    body: dict[str, Any]


@dataclass
class FakeHub:
    """Plays the hub's webhook endpoint: records, verifies signatures, answers as told."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answer_500_times: int = 0
    echo_wrong_challenge: bool = False
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def webhook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        expected = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Hub-Signature-256", "")
        ok = request.content_type == "application/json" and hmac.compare_digest(given, expected)
        async with self.changed:
            self.received.append(Received(raw=raw, signature_ok=ok, body=json.loads(raw)))
            self.changed.notify_all()
        if self.answer_500_times > 0:
            self.answer_500_times -= 1
            return web.Response(status=500)
        return web.Response(text="ok")

    async def handshake(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("hub.mode") != "subscribe" or q.get("hub.verify_token") != VERIFY_TOKEN:
            return web.Response(status=403)
        challenge = q.get("hub.challenge", "")
        return web.Response(text="0" + challenge if self.echo_wrong_challenge else challenge)

    async def wait(self, predicate: Callable[[], bool]) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), WAIT_SECONDS)

    def values(self, key: str) -> list[tuple[Received, dict[str, Any]]]:
        """Each (webhook, item) of ``key`` ("statuses" or "messages"), in arrival order."""
        out = []
        for received in self.received:
            for entry in received.body["entry"]:
                for change in entry["changes"]:
                    out.extend((received, item) for item in change["value"].get(key, []))
        return out

    def statuses(self, wamid: str) -> list[str]:
        return [item["status"] for _, item in self.values("statuses") if item["id"] == wamid]

    async def wait_statuses(self, wamid: str, count: int) -> list[str]:
        await self.wait(lambda: len(self.statuses(wamid)) >= count)
        return self.statuses(wamid)


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    fake = FakeHub()
    app = web.Application()
    app.router.add_post("/channels/whatsapp/webhook", fake.webhook)
    app.router.add_get("/channels/whatsapp/webhook", fake.handshake)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}/channels/whatsapp/webhook"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def standin(hub: FakeHub) -> AsyncIterator[StandinServer]:
    config = StandinConfig(
        webhook_url=hub.url,
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
        access_token=ACCESS_TOKEN,
        phone_number_id=PHONE_NUMBER_ID,
        api_version="v21.0",
        status_delay_seconds=0.01,
    )
    async with run_standin(config) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession(timeout=ClientTimeout(total=10)) as session:
        yield session


class Api:
    """The two faces of the stand-in: the Cloud API (as the adapter) and the control API."""

    def __init__(self, http: ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def send(
        self, body: Any, *, token: str | None = ACCESS_TOKEN, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        headers["Content-Type"] = "application/json"
        async with self.http.post(
            f"{self.base}/v21.0/{PHONE_NUMBER_ID}/messages", data=data, headers=headers, **kwargs
        ) as resp:
            return resp.status, await resp.json()

    async def send_text(self, text: str = "Hola", to: str = CUSTOMER) -> str:
        status, body = await self.send(text_body(text, to))
        assert status == 200, body
        return body["messages"][0]["id"]

    async def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.base}/_standin/{path}", json=body) as resp:
            return resp.status, await resp.json()

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self.control(method, path, body)
        assert status == 200, data
        return data

    async def customer_says(self, body: dict[str, Any], wa_id: str = CUSTOMER) -> dict[str, Any]:
        return await self.ok("POST", f"customers/{wa_id}/messages", body)


@pytest.fixture
def api(http: ClientSession, standin: StandinServer) -> Api:
    return Api(http, standin.url)


def text_body(text: str = "Hola", to: str = CUSTOMER) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": text, "preview_url": False},
    }


def template_body(to: str = CUSTOMER) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {
            "name": "claim_follow_up",
            "language": {"code": "es"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
        },
    }


def assert_error(body: dict[str, Any], code: int) -> dict[str, Any]:
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == "OAuthException"
    assert error["fbtrace_id"]
    return error


# -- sending ------------------------------------------------------------------------------


async def test_text_send_answers_a_wamid_then_signed_sent_and_delivered(
    api: Api, hub: FakeHub
) -> None:
    await api.customer_says({"text": "Hola", "name": "Ana"})

    status, body = await api.send(text_body("Buenos días"))

    assert status == 200
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": CUSTOMER, "wa_id": CUSTOMER}]
    wamid = body["messages"][0]["id"]
    assert wamid.startswith("wamid.") and len(wamid) > len("wamid.") + 10
    assert await hub.wait_statuses(wamid, 2) == ["sent", "delivered"]
    assert all(r.signature_ok for r in hub.received)
    items = [item for _, item in hub.values("statuses")]
    assert [i["recipient_id"] for i in items] == [CUSTOMER, CUSTOMER]
    assert int(items[0]["timestamp"]) <= int(items[1]["timestamp"])
    assert all("errors" not in i for i in items)
    envelope = hub.received[-1].body
    assert envelope["object"] == "whatsapp_business_account"
    change = envelope["entry"][0]["changes"][0]
    assert change["field"] == "messages"
    assert change["value"]["metadata"]["phone_number_id"] == PHONE_NUMBER_ID

    seen = await api.ok("GET", f"customers/{CUSTOMER}/messages")
    out = [m for m in seen["messages"] if m["direction"] == "out"]
    assert [(m["id"], m["text"], m["status"]) for m in out] == [(wamid, "Buenos días", "delivered")]


async def test_message_ids_are_unique(api: Api) -> None:
    await api.customer_says({"text": "Hola"})
    ids = [await api.send_text(f"n{i}") for i in range(5)]
    assert len(set(ids)) == 5


async def test_template_is_delivered_to_a_customer_who_never_wrote(api: Api, hub: FakeHub) -> None:
    status, body = await api.send(template_body())

    assert status == 200
    wamid = body["messages"][0]["id"]
    assert await hub.wait_statuses(wamid, 2) == ["sent", "delivered"]
    seen = await api.ok("GET", f"customers/{CUSTOMER}/messages")
    assert seen["messages"][0]["template"]["name"] == "claim_follow_up"


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
async def test_a_wrong_or_missing_bearer_token_is_401_code_190(api: Api, token: str | None) -> None:
    status, body = await api.send(text_body(), token=token)

    assert status == 401
    assert_error(body, 190)


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        [1, 2],
        {**text_body(), "messaging_product": "sms"},
        {**text_body(), "to": "not-a-number"},
        {**text_body(), "text": {"preview_url": False}},
        {**text_body(), "text": {"body": ""}},
        {**text_body(), "text": {"body": "x" * 4097}},
        {**text_body(), "type": "carrier_pigeon"},
        {**template_body(), "template": {"name": "claim_follow_up"}},
    ],
    ids=[
        "not-json",
        "not-object",
        "product",
        "to",
        "no-text-body",
        "empty-text",
        "too-long",
        "type",
        "no-language",
    ],
)
async def test_a_malformed_send_is_400_code_100(api: Api, hub: FakeHub, body: Any) -> None:
    status, answer = await api.send(body)

    assert status == 400
    error = assert_error(answer, 100)
    assert error["error_subcode"] == 2494010
    assert (await api.ok("GET", f"customers/{CUSTOMER}/messages"))["messages"] == []


async def test_an_unknown_phone_number_id_is_refused(api: Api, http: ClientSession) -> None:
    async with http.post(
        f"{api.base}/v21.0/999/messages",
        json=text_body(),
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    ) as resp:
        assert resp.status == 400
        assert_error(await resp.json(), 100)


# -- the 24-hour rule ---------------------------------------------------------------------


async def test_past_24_hours_a_text_is_accepted_then_fails_with_131047(
    api: Api, hub: FakeHub
) -> None:
    await api.customer_says({"text": "Hola"})
    await api.ok("POST", "clock", {"advance_seconds": DAY + 1})

    status, body = await api.send(text_body("¿Sigue ahí?"))

    assert status == 200
    wamid = body["messages"][0]["id"]
    assert await hub.wait_statuses(wamid, 1) == ["failed"]
    (item,) = [i for _, i in hub.values("statuses") if i["id"] == wamid]
    (error,) = item["errors"]
    assert error["code"] == 131047
    assert error["title"] == "Re-engagement message"
    assert "24 hours" in error["error_data"]["details"]
    seen = await api.ok("GET", f"customers/{CUSTOMER}/messages")
    assert seen["window_open"] is False
    assert seen["messages"][-1]["status"] == "failed"


async def test_just_before_24_hours_a_text_is_delivered(api: Api, hub: FakeHub) -> None:
    await api.customer_says({"text": "Hola"})
    await api.ok("POST", "clock", {"advance_seconds": DAY - 60})

    wamid = await api.send_text()

    assert await hub.wait_statuses(wamid, 2) == ["sent", "delivered"]


async def test_past_24_hours_a_template_is_delivered(api: Api, hub: FakeHub) -> None:
    await api.customer_says({"text": "Hola"})
    await api.ok("POST", "clock", {"advance_seconds": 3 * DAY})

    status, body = await api.send(template_body())

    assert status == 200
    assert await hub.wait_statuses(body["messages"][0]["id"], 2) == ["sent", "delivered"]


async def test_a_customer_writing_again_reopens_the_window(api: Api, hub: FakeHub) -> None:
    await api.customer_says({"text": "Hola"})
    await api.ok("POST", "clock", {"advance_seconds": 2 * DAY})
    await api.customer_says({"text": "¿Hola?"})

    wamid = await api.send_text()

    assert await hub.wait_statuses(wamid, 2) == ["sent", "delivered"]


async def test_a_text_to_a_customer_who_never_wrote_fails_with_131047(
    api: Api, hub: FakeHub
) -> None:
    wamid = await api.send_text()

    assert await hub.wait_statuses(wamid, 1) == ["failed"]


# -- injected faults ----------------------------------------------------------------------


async def test_503_twice_then_ok(api: Api, hub: FakeHub) -> None:
    await api.customer_says({"text": "Hola"})
    await api.ok("POST", "faults", {"status": 503, "count": 2})

    answers = [await api.send(text_body()) for _ in range(3)]

    assert [status for status, _ in answers] == [503, 503, 200]
    for _, body in answers[:2]:
        assert assert_error(body, 131000)["message"] == "Something went wrong"
    assert await hub.wait_statuses(answers[2][1]["messages"][0]["id"], 2) == ["sent", "delivered"]
    assert (await api.ok("GET", "faults"))["faults"] == []


async def test_429_rate_limit(api: Api) -> None:
    await api.ok("POST", "faults", {"status": 429, "count": 1})

    status, body = await api.send(template_body())

    assert status == 429
    assert assert_error(body, 130429)["message"] == "Rate limit hit"
    assert (await api.send(template_body()))[0] == 200


async def test_a_4xx_fault_with_a_provider_code(api: Api) -> None:
    await api.ok("POST", "faults", {"status": 400, "code": 131026, "count": 1})

    status, body = await api.send(template_body())

    assert status == 400
    assert assert_error(body, 131026)["error_data"]["details"]


async def test_a_held_request_outlasts_the_client_timeout(api: Api) -> None:
    await api.ok("POST", "faults", {"timeout_seconds": 3, "count": 1})

    with pytest.raises(TimeoutError):
        await api.send(template_body(), timeout=ClientTimeout(total=0.3))

    # The fault was used up by the held request; the next one is answered.
    assert (await api.send(template_body()))[0] == 200


@pytest.mark.parametrize(
    "fault",
    [{"count": 1}, {"status": 200}, {"timeout_seconds": 1000}, {"status": 503, "count": 0}],
)
async def test_an_invalid_fault_is_refused(api: Api, fault: dict[str, Any]) -> None:
    status, _ = await api.control("POST", "faults", fault)
    assert status == 400


# -- webhook behaviours -------------------------------------------------------------------


async def test_duplicate_webhooks_sends_each_webhook_twice(api: Api, hub: FakeHub) -> None:
    await api.ok("POST", "config", {"duplicate_webhooks": True})

    await api.customer_says({"text": "Hola"})
    wamid = await api.send_text()

    assert await hub.wait_statuses(wamid, 4) == ["sent", "sent", "delivered", "delivered"]
    raws = [r.raw for r in hub.received]
    assert len(raws) == 6
    assert raws[0] == raws[1] and raws[2] == raws[3] and raws[4] == raws[5]
    assert all(r.signature_ok for r in hub.received)


async def test_reverse_status_order_sends_delivered_before_sent(api: Api, hub: FakeHub) -> None:
    await api.ok("POST", "config", {"reverse_status_order": True})
    await api.customer_says({"text": "Hola"})

    wamid = await api.send_text()

    assert await hub.wait_statuses(wamid, 2) == ["delivered", "sent"]
    seen = await api.ok("GET", f"customers/{CUSTOMER}/messages")
    assert seen["messages"][-1]["status"] == "delivered"


async def test_read_on_demand_and_auto_read(api: Api, hub: FakeHub) -> None:
    await api.customer_says({"text": "Hola"})
    first = await api.send_text()
    await hub.wait_statuses(first, 2)

    read = await api.ok("POST", f"customers/{CUSTOMER}/read")

    assert read == {"read": [first]}
    assert await hub.wait_statuses(first, 3) == ["sent", "delivered", "read"]

    await api.ok("POST", "config", {"auto_read": True})
    second = await api.send_text()
    assert await hub.wait_statuses(second, 3) == ["sent", "delivered", "read"]


async def test_bad_signature_is_noticed_by_the_hub(api: Api, hub: FakeHub) -> None:
    await api.ok("POST", "config", {"bad_signature": True})

    await api.customer_says({"text": "Hola"})

    assert [r.signature_ok for r in hub.received] == [False]


async def test_an_unknown_setting_is_refused(api: Api) -> None:
    status, body = await api.control("POST", "config", {"duplicate_webhook": True})
    assert status == 400 and "duplicate_webhook" in body["error"]


# -- the customer (inbound messages) ------------------------------------------------------


async def test_inbound_text_is_a_signed_webhook_with_the_contract_shape(
    api: Api, hub: FakeHub
) -> None:
    answer = await api.customer_says({"text": "Hola, ¿qué tal?", "name": "Ana Pérez"})

    assert answer["hub_status"] == 200
    (received,) = hub.received
    assert received.signature_ok
    value = received.body["entry"][0]["changes"][0]["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {
        "display_phone_number": "15550001111",
        "phone_number_id": "100200300",
    }
    assert value["contacts"] == [{"profile": {"name": "Ana Pérez"}, "wa_id": CUSTOMER}]
    (message,) = value["messages"]
    assert message["from"] == CUSTOMER
    assert message["id"] == answer["id"] and message["id"].startswith("wamid.")
    assert message["timestamp"].isdigit()
    assert message["type"] == "text"
    assert message["text"] == {"body": "Hola, ¿qué tal?"}


async def test_inbound_button_reply_quotes_the_business_message(api: Api, hub: FakeHub) -> None:
    await api.customer_says({"text": "Hola"})
    wamid = await api.send_text("¿Le ayudo?")

    await api.customer_says(
        {"interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "Sí"}}}
    )

    (_, message) = hub.values("messages")[-1]
    assert message["type"] == "interactive"
    assert message["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "b1", "title": "Sí"},
    }
    assert message["context"] == {"from": "15550001111", "id": wamid}


async def test_inbound_image(api: Api, hub: FakeHub) -> None:
    await api.customer_says({"image": {"caption": "mi recibo"}})

    (_, message) = hub.values("messages")[-1]
    assert message["type"] == "image"
    image = message["image"]
    assert image["caption"] == "mi recibo"
    assert image["mime_type"] == "image/jpeg"
    assert image["id"] and image["sha256"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"button": {"payload": "STOP", "text": "Parar"}}, "button"),
        ({"location": {"latitude": 40.4, "longitude": -3.7, "name": "Sol"}}, "location"),
        ({"document": {"caption": "contrato"}}, "document"),
        ({"interactive": {"list_reply": {"id": "r1", "title": "Pagos"}}}, "interactive"),
        ({"unsupported": {}}, "unsupported"),
    ],
)
async def test_other_inbound_types(api: Api, hub: FakeHub, body: dict[str, Any], kind: str) -> None:
    await api.customer_says(body)

    (_, message) = hub.values("messages")[-1]
    assert message["type"] == kind
    if kind == "document":
        assert message["document"]["filename"]
    if kind == "unsupported":
        assert message["errors"][0]["code"] == 131051


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "a", "image": {}}, {"location": {}}])
async def test_a_malformed_inbound_control_call_is_refused(
    api: Api, hub: FakeHub, body: Any
) -> None:
    status, _ = await api.control("POST", f"customers/{CUSTOMER}/messages", body)

    assert status == 400
    assert hub.received == []


async def test_the_hub_answering_500_is_retried_three_times_and_logged(
    api: Api, hub: FakeHub
) -> None:
    hub.answer_500_times = 3

    answer = await api.customer_says({"text": "Hola"})

    assert answer["hub_status"] == 500
    assert len(hub.received) == 3
    assert len({r.raw for r in hub.received}) == 1
    (entry,) = (await api.ok("GET", "webhooks"))["webhooks"]
    assert entry["kind"] == "message"
    assert [a["status"] for a in entry["attempts"]] == [500, 500, 500]
    assert entry["ok"] is False


async def test_a_retry_that_succeeds_is_logged(api: Api, hub: FakeHub) -> None:
    hub.answer_500_times = 2

    answer = await api.customer_says({"text": "Hola"})

    assert answer["hub_status"] == 200
    (entry,) = (await api.ok("GET", "webhooks"))["webhooks"]
    assert [a["status"] for a in entry["attempts"]] == [500, 500, 200]
    assert entry["ok"] is True


# -- verification handshake, page, reset --------------------------------------------------


async def test_verification_handshake_with_the_right_echo(api: Api) -> None:
    result = await api.ok("POST", "verify")

    assert result["ok"] is True
    assert result["status"] == 200
    assert result["echoed"] == result["challenge"]


async def test_verification_handshake_with_a_wrong_echo(api: Api, hub: FakeHub) -> None:
    hub.echo_wrong_challenge = True

    result = await api.ok("POST", "verify")

    assert result["ok"] is False
    assert result["status"] == 200


async def test_verification_handshake_with_a_wrong_token(api: Api) -> None:
    result = await api.ok("POST", "verify", {"verify_token": "not-the-token"})

    assert result["ok"] is False
    assert result["status"] == 403


async def test_the_customer_page_is_self_contained(http: ClientSession, api: Api) -> None:
    async with http.get(f"{api.base}/_standin/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        html = await resp.text()

    assert "<script>" in html and "<style>" in html
    links = re.findall(r"""(?:src|href|action)\s*=\s*["']([^"']*)["']""", html, re.IGNORECASE)
    assert [u for u in links if u.startswith(("http", "//"))] == []
    assert "http://" not in html and "https://" not in html
    assert "/_standin/customers/" in html


async def test_reset_forgets_everything(api: Api, hub: FakeHub) -> None:
    await api.customer_says({"text": "Hola"})
    await api.ok("POST", "config", {"duplicate_webhooks": True})
    await api.ok("POST", "faults", {"status": 503, "count": 5})
    await api.ok("POST", "clock", {"advance_seconds": 10})

    await api.ok("POST", "reset")

    assert (await api.ok("GET", f"customers/{CUSTOMER}/messages"))["messages"] == []
    assert (await api.ok("GET", "config"))["duplicate_webhooks"] is False
    assert (await api.ok("GET", "faults"))["faults"] == []
    assert (await api.ok("GET", "clock"))["offset_seconds"] == 0
    assert (await api.ok("GET", "webhooks"))["webhooks"] == []


async def test_healthz(http: ClientSession, api: Api) -> None:
    async with http.get(f"{api.base}/healthz") as resp:
        assert resp.status == 200


# -- standalone ---------------------------------------------------------------------------


async def test_runs_standalone_without_django(hub: FakeHub, http: ClientSession) -> None:
    """``python -m`` prints its ready line and serves, with Django never imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    env.update(
        WHATSAPP_APP_SECRET=APP_SECRET,
        WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN,
        WHATSAPP_ACCESS_TOKEN=ACCESS_TOKEN,
    )
    code = (
        "import sys, runpy; sys.argv = ['standin', '--port', '0', '--webhook-url', sys.argv[1]];"
        "import atexit;"
        "atexit.register(lambda: print('django' if 'django' in sys.modules else 'clean',"
        " file=sys.stderr));"
        "runpy.run_module('chat.channels.whatsapp_standin', run_name='__main__')"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        hub.url,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        match = re.fullmatch(r"whatsapp stand-in on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        async with http.post(
            f"{match.group(1)}/_standin/customers/{CUSTOMER}/messages", json={"text": "Hola"}
        ) as resp:
            assert (await resp.json())["hub_status"] == 200
        assert hub.received[0].signature_ok
    finally:
        if proc.returncode is None:
            proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, stderr.decode()
    assert stderr.decode().strip().endswith("clean")
