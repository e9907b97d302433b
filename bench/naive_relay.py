"""Bench baseline: the naive Channels relay a tutorial gives.

A stock ``AsyncJsonWebsocketConsumer``: a customer's frame is acknowledged and
``group_send``-ed through the classic ``channels_redis`` RedisChannelLayer to the room's
operator group; nothing is persisted, nothing is replayed.  Same URLs and frames as
bench.bare_relay.  Served by daphne with ``DJANGO_SETTINGS_MODULE=bench.naive_settings``.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive_settings")

import django

django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class CustomerConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.room = self.scope["url_route"]["kwargs"]["room"]
        await self.accept()
        await self.send_json({"type": "session"})

    async def receive_json(self, content: dict, **kwargs: object) -> None:
        await self.channel_layer.group_send(
            f"room.{self.room}",
            {
                "type": "chat.message",
                "message": {"text": content.get("text", ""), "direction": "in"},
            },
        )
        await self.send_json({"type": "ack", "client_id": content.get("client_id")})


class OperatorConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.group = f"room.{self.scope['url_route']['kwargs']['room']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello"})

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def chat_message(self, event: dict) -> None:
        await self.send_json(
            {"type": "event", "name": "chat.message_created", "data": {"message": event["message"]}}
        )


application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("customer/<str:room>", CustomerConsumer.as_asgi()),
                path("operator/<str:room>", OperatorConsumer.as_asgi()),
            ]
        )
    }
)
