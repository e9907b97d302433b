"""WebSocket transport base: frame parsing, error frames, rate limiting, forced close.

Subclasses declare ``actions`` (frame ``type`` → handler method name).  Every malformed frame
gets an ``error`` frame with a stable code and the socket stays usable; an unexpected
exception is logged, answered with an ``internal_error`` frame and closes the socket with
4500 (daphne refuses application close codes outside 1000 and 3000 to 4999, so not 1011).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from hub.exceptions import ErrorCode, HubError, ValidationFailed

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_INTERNAL_ERROR = 4500


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int, clock: Any = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.clock = clock
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class HubJsonConsumer(AsyncJsonWebsocketConsumer):
    actions: dict[str, str] = {}
    # At most this many rate_limited error frames a second; excess frames are dropped.
    _RATE_ERRORS_PER_SECOND = 5

    async def dispatch(self, message: dict) -> None:
        """Channels' dispatch first hops to its shared sync thread to close old database
        connections, for every frame and every doorbell (17% of a console process's CPU
        when measured).  The hub's database work runs through ``run_db``, which manages its
        own connections, so the hop is skipped."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_connect(self, message: dict) -> None:
        self.bucket = TokenBucket(settings.HUB_WS_RATE_PER_SECOND, settings.HUB_WS_RATE_BURST)
        self._last_rate_error = 0.0
        self._dropped = 0
        await super().websocket_connect(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.bucket.take():
            await self._rate_limited()
            return
        raw = text_data if text_data is not None else bytes_data
        size = len(raw.encode() if isinstance(raw, str) else (raw or b""))
        if size > settings.HUB_WS_MAX_FRAME_BYTES:
            await self.send_error(
                ValidationFailed(
                    f"Frame of {size} bytes is over the {settings.HUB_WS_MAX_FRAME_BYTES} limit.",
                    code=ErrorCode.FRAME_TOO_LARGE,
                    max_bytes=settings.HUB_WS_MAX_FRAME_BYTES,
                )
            )
            return
        try:
            content = json.loads(raw)
        except (ValueError, UnicodeDecodeError, TypeError) as exc:
            await self.send_error(
                ValidationFailed(f"Frame is not valid JSON: {exc}", code=ErrorCode.INVALID_JSON)
            )
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        request_id = content.get("request_id") if isinstance(content, dict) else None
        if request_id is not None and not isinstance(request_id, str | int):
            request_id = None
        try:
            if not isinstance(content, dict):
                raise ValidationFailed(
                    "A frame must be a JSON object.", code=ErrorCode.INVALID_FRAME
                )
            frame_type = content.get("type")
            if frame_type is None:
                raise ValidationFailed(
                    "Field 'type' is required.", code=ErrorCode.MISSING_FIELD, field="type"
                )
            if not isinstance(frame_type, str):
                raise ValidationFailed(
                    "Field 'type' must be a string.", code=ErrorCode.WRONG_TYPE, field="type"
                )
            handler_name = self.actions.get(frame_type)
            if handler_name is None:
                raise ValidationFailed(
                    f"Unknown frame type '{frame_type[:64]}'.",
                    code=ErrorCode.UNKNOWN_TYPE,
                    known=sorted(self.actions),
                )
            reply = await getattr(self, handler_name)(content)
        except HubError as error:
            await self.send_error(error, request_id=request_id)
            return
        except Exception:
            logger.exception("unexpected error handling a %s frame", type(self).__name__)
            await self.send_json(
                {
                    "type": "error",
                    "code": str(ErrorCode.INTERNAL_ERROR),
                    "message": "The server failed to handle this frame; reconnect and retry.",
                    "data": {},
                    **({"request_id": request_id} if request_id is not None else {}),
                }
            )
            await self.close(code=CLOSE_INTERNAL_ERROR)
            return
        if reply is not None:
            if request_id is not None:
                reply["request_id"] = request_id
            await self.send_json(reply)

    async def send_error(self, error: HubError, *, request_id: Any = None) -> None:
        frame: dict[str, Any] = {"type": "error", **error.as_dict()}
        if request_id is not None:
            frame["request_id"] = request_id
        await self.send_json(frame)

    async def _rate_limited(self) -> None:
        now = time.monotonic()
        self._dropped += 1
        if now - self._last_rate_error >= 1 / self._RATE_ERRORS_PER_SECOND:
            self._last_rate_error = now
            await self.send_error(
                ValidationFailed(
                    "Too many frames: this one was dropped. Slow down.",
                    code=ErrorCode.RATE_LIMITED,
                    rate_per_second=settings.HUB_WS_RATE_PER_SECOND,
                    burst=settings.HUB_WS_RATE_BURST,
                    dropped=self._dropped,
                )
            )

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, separators=(",", ":"))

    async def user_close(self, message: dict) -> None:
        """Group handler: the user logged out or was disabled.  A logout names its session:
        sockets opened with another session or with an API token stay open."""
        session_key = message.get("session_key")
        if session_key and getattr(self, "session_key", None) != session_key:
            return
        await self.send_json({"type": "closing", "reason": message.get("reason", "")})
        await self.close(code=CLOSE_UNAUTHENTICATED)
