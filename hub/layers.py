"""The Redis pub/sub channel layer, made to ride out a Redis restart.

channels-redis' ``RedisPubSubChannelLayer`` subscribes a consumer's own channel when the
consumer starts and a group's channel on ``group_add``.  While Redis is down those calls
raise, so a console reconnecting during a Redis restart fails its handshake, and a group
joined during the outage is never subscribed.  This subclass remembers a subscription that
failed and retries it in the background until Redis answers; unsubscribing during an outage
is forgotten instead of raised.  Nothing is lost meanwhile: the database is the record and
consoles catch up from the event log (chat.events).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, _wrap_close
from redis import exceptions as redis_errors

logger = logging.getLogger(__name__)

# What "Redis is unreachable" looks like from redis-py's asyncio client.
_UNREACHABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
_RETRY_SECONDS = 0.5


class ResilientPubSubChannelLayer(RedisPubSubChannelLayer):
    """The configured layer: channels-redis' per-event-loop proxy, building resilient loop
    layers instead of plain ones."""

    def _get_layer(self) -> ResilientLoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = ResilientLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer


class ResilientLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: set[str] = set()
        self._retry_task: asyncio.Task | None = None

    async def _subscribe_resilient(self, name: str) -> None:
        try:
            await self._get_shard(name).subscribe(name)
        except _UNREACHABLE:
            logger.warning("Redis unreachable: subscription to %s will be retried", name)
            self._pending.add(name)
            if self._retry_task is None or self._retry_task.done():
                self._retry_task = asyncio.get_running_loop().create_task(self._retry())

    async def _retry(self) -> None:
        while self._pending:
            await asyncio.sleep(_RETRY_SECONDS)
            for name in list(self._pending):
                if not self._still_wanted(name):
                    self._pending.discard(name)
                    continue
                try:
                    await self._get_shard(name).subscribe(name)
                except _UNREACHABLE:
                    break  # still down: try again after the pause
                self._pending.discard(name)
        self._retry_task = None

    def _still_wanted(self, name: str) -> bool:
        return name in self.channels or bool(self.groups.get(name))

    async def _subscribe_to_channel(self, channel: str) -> None:
        self.channels[channel] = asyncio.Queue()
        await self._subscribe_resilient(channel)

    async def group_add(self, group: str, channel: str) -> None:
        if channel not in self.channels:
            raise RuntimeError("group_add() works only on channels of this process")
        group_channel = self._get_group_channel_name(group)
        self.groups.setdefault(group_channel, set()).add(channel)
        await self._subscribe_resilient(group_channel)

    async def group_discard(self, group: str, channel: str) -> None:
        try:
            await super().group_discard(group, channel)
        except _UNREACHABLE:
            # The server-side subscription dies with the connection anyway.
            self._pending.discard(self._get_group_channel_name(group))


class EmbeddedChannelLayer(InMemoryChannelLayer):
    """The embedded default's in-memory layer, with its expiry sweep throttled.

    Channels' in-memory layer walks every channel and group membership on each send and
    receive to drop expired messages: with thousands of open sockets that walk dominated the
    CPU per message.  Once a second is plenty for expiry.  Group memberships never expire
    here (a console open for days stays in its groups), as with the Redis pub/sub layer.
    """

    SWEEP_EVERY_SECONDS = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("group_expiry", 10 * 365 * 24 * 3600)
        super().__init__(*args, **kwargs)
        self._last_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= self.SWEEP_EVERY_SECONDS:
            self._last_sweep = now
            super()._clean_expired()
