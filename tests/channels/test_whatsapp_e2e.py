"""End to end: the WhatsApp stand-in and a real daphne hub over loopback HTTP, an operator's
console on a real WebSocket.  The customer writes on WhatsApp → the console shows it; the
operator answers → the outbox sends it → the provider's status callbacks come back as
``chat.message_status`` events; a provider refusal reaches the console with its code.

Run on both shapes: PostgreSQL + Redis, and the embedded default (SQLite, in-memory layer,
the scheduler inside the web process)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from tests.chat.whatsapp_support import WEBHOOK_PATH, Standin, whatsapp_env
from tests.e2e.client import STAFF_PASSWORD, Console
from tests.harness import (
    HubProcess,
    api_token,
    create_staff,
    free_port,
    fresh_postgres,
    hub_env,
    migrate,
)
from tests.services import require_redis

pytestmark = pytest.mark.e2e

WA_ID = "34600999888"


@contextlib.contextmanager
def _database(shape: str, tmp_path) -> Iterator[tuple[str | None, str | None, dict[str, str]]]:
    if shape == "postgres":
        with fresh_postgres() as url:
            yield url, require_redis(), {}
    else:
        yield None, None, {"HUB_VAR_DIR": str(tmp_path)}


async def _event(console: Console, predicate, what: str) -> dict:
    """The first event of the console's (gap-checked) stream matching ``predicate``,
    whether it arrived before or after this call."""

    def found(c: Console) -> bool:
        return any(predicate(e) for e in c.events)

    await console.pump(found, within=20, what=what)
    return next(e for e in console.events if predicate(e))


def _status_of(message_id: int, status: str):
    def match(frame: dict) -> bool:
        return (
            frame.get("name") == "chat.message_status"
            and frame["data"]["message"]["id"] == message_id
            and frame["data"]["message"]["status"] == status
        )

    return match


@pytest.mark.parametrize("shape", ["postgres", "embedded"])
def test_whatsapp_round_trip_reaches_the_console_with_delivery_states(shape, tmp_path):
    port = free_port()
    webhook = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    with (
        Standin(webhook, status_delay_seconds=0.05) as standin,
        _database(shape, tmp_path) as (db_url, redis_url, extra),
    ):
        env = hub_env(db_url, redis_url, **whatsapp_env(standin.url), **extra)
        migrate(env)
        create_staff(env, "op", "Operator", STAFF_PASSWORD, online=True)
        with HubProcess(env, port=port, log_dir=tmp_path) as web:
            token = api_token(web.http, "op", STAFF_PASSWORD)
            assert standin.call("POST", "/_standin/verify")["ok"] is True

            async def scenario() -> None:
                console = await Console.connect(web.ws, token)
                answer = await asyncio.to_thread(
                    standin.customer_writes, WA_ID, text="¿Llegó mi transferencia?", name="Ana"
                )
                assert answer["hub_status"] == 200
                created = await _event(
                    console,
                    lambda f: f.get("name") == "chat.message_created",
                    "the customer's WhatsApp message",
                )
                conversation = created["data"]["conversation"]
                assert conversation["channel"] == "whatsapp"
                assert conversation["reply_window_closes_at"] is not None
                assert created["data"]["message"]["text"] == "¿Llegó mi transferencia?"

                reply = await console.request(
                    {
                        "type": "message.send",
                        "conversation_id": conversation["id"],
                        "client_id": "r1",
                        "text": "Sí, llegó esta mañana.",
                    }
                )
                assert reply["type"] == "ack", reply
                assert reply["message"]["status"] == "pending"
                message_id = reply["message"]["id"]
                sent = await _event(console, _status_of(message_id, "sent"), "sent")
                assert sent["conversation_id"] == conversation["id"]
                await _event(console, _status_of(message_id, "delivered"), "delivered")
                outbound = await asyncio.to_thread(standin.outbound, WA_ID)
                assert [m["text"] for m in outbound] == ["Sí, llegó esta mañana."]

                # A refusal by the provider is final and shown with its code and text.
                await asyncio.to_thread(standin.fault, status=400, code=131026, count=1)
                refused = await console.request(
                    {
                        "type": "message.send",
                        "conversation_id": conversation["id"],
                        "client_id": "r2",
                        "text": "¿Algo más?",
                    }
                )
                failed = await _event(
                    console, _status_of(refused["message"]["id"], "failed"), "failed"
                )
                assert failed["data"]["message"]["error"]["code"] == "131026"
                assert failed["data"]["message"]["error"]["text"]
                await console.close()

            asyncio.run(scenario())
            assert "Traceback" not in web.log(), web.log()[-3000:]
