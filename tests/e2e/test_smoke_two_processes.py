"""(a) Two daphne processes on PostgreSQL + Redis: customer on one, operator on the other."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.e2e.client import recv_until
from tests.harness import HubProcess, api_token, create_staff, fresh_postgres, hub_env, migrate
from tests.services import require_redis

pytestmark = pytest.mark.e2e


def test_message_crosses_processes_and_reply_comes_back(tmp_path):
    redis_url = require_redis()
    with fresh_postgres() as db_url:
        env = hub_env(db_url, redis_url)
        migrate(env)
        create_staff(env, "op", "Operator", "pw-op", online=True)
        with HubProcess(env, log_dir=tmp_path) as web1, HubProcess(env, log_dir=tmp_path) as web2:
            token = api_token(web2.http, "op", "pw-op")

            async def scenario():
                console = await websockets.connect(
                    f"{web2.ws}/ws/console/",
                    additional_headers={"Authorization": f"Bearer {token}"},
                )
                await recv_until(console, lambda f: f["type"] == "snapshot")
                customer = await websockets.connect(f"{web1.ws}/ws/webchat/")
                await recv_until(customer, lambda f: f["type"] == "session")
                await customer.send(
                    json.dumps(
                        {"type": "message.send", "client_id": "m1", "text": "hello from web1"}
                    )
                )
                ack = await recv_until(customer, lambda f: f["type"] == "ack")
                event = await recv_until(console, lambda f: f.get("name") == "chat.message_created")
                assert event["data"]["message"]["id"] == ack["message"]["id"]
                assert event["data"]["message"]["text"] == "hello from web1"
                await console.send(
                    json.dumps(
                        {
                            "type": "message.send",
                            "conversation_id": event["conversation_id"],
                            "client_id": "r1",
                            "text": "hello from web2",
                        }
                    )
                )
                reply = await recv_until(
                    customer,
                    lambda f: f["type"] == "message" and f["message"]["direction"] == "out",
                )
                assert reply["message"]["text"] == "hello from web2"
                await console.close()
                await customer.close()

            asyncio.run(scenario())
