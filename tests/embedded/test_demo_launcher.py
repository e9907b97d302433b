"""``make run``'s launcher (``python -m hub.demo``): the hub on the embedded default with the
WhatsApp provider stand-in and the back-office stand-in, wired to each other — a customer's
WhatsApp message reaches the hub, the hub's answer reaches the customer, the back office
answers the hub — and Ctrl-C stops every process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.harness import ROOT, api_token, free_port, http_json, hub_env, manage, migrate

pytestmark = pytest.mark.e2e

DEADLINE_SECONDS = 30


def _wait_until(probe, what: str, timeout: float = DEADLINE_SECONDS):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def _get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read() or b"{}")


def test_demo_launcher_wires_the_hub_to_both_stand_ins(tmp_path):
    env = hub_env(None, None, HUB_VAR_DIR=str(tmp_path), HUB_DEMO="1")
    migrate(env)
    manage(env, "demo_seed")
    port, whatsapp_port, backoffice_port = free_port(), free_port(), free_port()
    env.update(
        PORT=str(port),
        HUB_DEMO_STANDIN_PORT=str(whatsapp_port),
        HUB_DEMO_BACKOFFICE_PORT=str(backoffice_port),
    )
    log = (tmp_path / "demo.log").open("w")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "hub.demo"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    hub = f"http://127.0.0.1:{port}"
    whatsapp = f"http://127.0.0.1:{whatsapp_port}"
    try:
        _wait_until(lambda: _get(f"{hub}/healthz")[0] == 200, "the hub")
        _wait_until(lambda: _get(f"{whatsapp}/healthz")[0] == 200, "the WhatsApp stand-in")

        # The provider's handshake and a signed customer message are accepted by the hub.
        status, verified = http_json("POST", f"{whatsapp}/_standin/verify")
        assert status == 200 and verified["ok"], verified
        status, sent = http_json(
            "POST",
            f"{whatsapp}/_standin/customers/34600111222/messages",
            {"text": "Hola, tengo un problema con una transferencia", "name": "Ana Pérez"},
        )
        assert status == 200 and sent["hub_status"] == 200, sent

        token = api_token(hub, "admin", "demo")
        status, listing = http_json("GET", f"{hub}/api/conversations/", token=token)
        assert status == 200, listing
        conversations = [c for c in listing["conversations"] if c["channel"] == "whatsapp"]
        assert [c["customer"]["name"] for c in conversations] == ["Ana Pérez"]
        conversation_id = conversations[0]["id"]

        # The operator it was routed to answers; the reply goes out through the outbox to
        # the stand-in, which reports it delivered.
        operator = conversations[0]["operator"]
        assert operator is not None, conversations[0]
        username = {"Omar One": "operator1", "Olga Two": "operator2"}[operator["name"]]
        status, reply = http_json(
            "POST",
            f"{hub}/api/conversations/{conversation_id}/messages/",
            {"client_id": "demo-1", "text": "Hola Ana, lo reviso ahora mismo."},
            token=api_token(hub, username, "demo"),
        )
        assert status == 201, reply

        def delivered_out() -> list[dict]:
            _, log_ = _get(f"{whatsapp}/_standin/customers/34600111222/messages")
            return [
                m
                for m in log_["messages"]
                if m["direction"] == "out" and m["status"] in {"delivered", "read"}
            ]

        delivered = _wait_until(delivered_out, "the operator's reply delivered on WhatsApp")
        assert [m["text"] for m in delivered] == ["Hola Ana, lo reviso ahora mismo."]

        # The back office answers the hub's search for the bank user behind the customer.
        status, found = http_json(
            "GET",
            f"{hub}/api/backoffice/conversations/{conversation_id}/bank-users/?q=garcia",
            token=token,
        )
        assert status == 200, found
        assert "ana.garcia" in json.dumps(found)
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(timeout=20)
        finally:
            log.close()
    # Nothing is left listening once the launcher has stopped.
    for url in (f"{hub}/healthz", f"{whatsapp}/healthz"):
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            _get(url)
