"""The embedded default: one daphne process with no DATABASE_URL and no REDIS_URL (SQLite
under HUB_VAR_DIR, the in-memory channel layer) — the shape of ``make run``."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.client import STAFF_PASSWORD, Console, Customer, recv_until
from tests.harness import HubProcess, api_token, create_staff, http_json, hub_env, migrate

pytestmark = pytest.mark.e2e


def test_embedded_default_round_trip_and_health(tmp_path):
    env = hub_env(None, None, HUB_VAR_DIR=str(tmp_path))
    migrate(env)
    create_staff(env, "op", "Operator", STAFF_PASSWORD, online=True)
    assert (tmp_path / "hub.sqlite3").exists(), "the SQLite file belongs under HUB_VAR_DIR"

    with HubProcess(env, log_dir=tmp_path) as web:
        status, health = http_json("GET", f"{web.http}/healthz")
        assert status == 200, health
        assert health["database"]["vendor"] == "sqlite"
        assert health["channel_layer"]["backend"] == "EmbeddedChannelLayer"
        token = api_token(web.http, "op", STAFF_PASSWORD)

        async def scenario() -> None:
            console = await Console.connect(web.ws, token)
            customer = await Customer.connect(web.ws, name="visitor")
            sent = await customer.send("Hello, is my transfer through?")
            await console.pump(lambda c: len(c.messages()) == 1, what="the customer's message")
            event = console.events[-1]
            assert event["data"]["message"] == sent
            assert event["data"]["conversation"]["operator_id"] == console.opening[0]["user"]["id"]

            reply = await console.request(
                {
                    "type": "message.send",
                    "conversation_id": event["conversation_id"],
                    "client_id": "r1",
                    "text": "Yes, it arrived this morning.",
                }
            )
            assert reply["type"] == "ack", reply
            frame = await recv_until(
                customer.ws,
                lambda f: f["type"] == "message" and f["message"]["direction"] == "out",
                what="the operator's reply",
            )
            assert frame["message"]["text"] == "Yes, it arrived this morning."

            # A console that drops and comes back resumes from the log on SQLite too.
            await console.close()
            second = await customer.send("Thank you!")
            await console.reconnect(web.ws)
            assert console.replayed is not None and console.replayed >= 1
            assert console.messages()[-1]["id"] == second["id"]
            await console.close()
            await customer.close()

        asyncio.run(asyncio.wait_for(scenario(), 40))
