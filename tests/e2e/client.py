"""Small asyncio WebSocket clients for the end-to-end tests: a web chat customer and a staff
console, speaking the hub's JSON frames over real sockets (``websockets``).

Every wait is bounded: helpers take ``within`` (seconds) and raise ``TimeoutError`` naming
what they were waiting for.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

DEFAULT_TIMEOUT = 10.0
STAFF_PASSWORD = "pw-staff-e2e"
MESSAGE_CREATED = "chat.message_created"


async def recv_json(ws: ClientConnection, within: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), within))


async def recv_until(
    ws: ClientConnection,
    predicate: Callable[[dict[str, Any]], bool],
    within: float = DEFAULT_TIMEOUT,
    what: str = "a matching frame",
) -> dict[str, Any]:
    """The first frame matching ``predicate``; frames before it are dropped."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {what} within {within} s")
        try:
            frame = await recv_json(ws, left)
        except TimeoutError:
            raise TimeoutError(f"no {what} within {within} s") from None
        if predicate(frame):
            return frame


async def send_json(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def expect_close(ws: ClientConnection, within: float = DEFAULT_TIMEOUT) -> tuple[int, list]:
    """Read until the server closes the socket; return (close code, frames read before)."""
    frames: list[dict[str, Any]] = []

    async def drain() -> None:
        while True:
            frames.append(json.loads(await ws.recv()))

    try:
        await asyncio.wait_for(drain(), within)
    except websockets.ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else 1006), frames
    raise AssertionError("unreachable")  # pragma: no cover


async def ping_rtt(ws: ClientConnection, within: float = DEFAULT_TIMEOUT) -> float:
    """Seconds between sending ``ping`` and receiving its ``pong`` (other frames skipped)."""
    request_id = f"ping-{time.monotonic_ns()}"
    started = time.perf_counter()
    await send_json(ws, {"type": "ping", "request_id": request_id})
    await recv_until(
        ws,
        lambda f: f["type"] == "pong" and f.get("request_id") == request_id,
        within,
        what="pong",
    )
    return time.perf_counter() - started


class Customer:
    """A web chat visitor on ``/ws/webchat/``; ``acked`` lists the messages the hub stored."""

    def __init__(self, ws: ClientConnection, session: dict[str, Any], name: str) -> None:
        self.ws = ws
        self.session = session
        self.name = name
        self.acked: list[dict[str, Any]] = []
        self._seq = 0

    @classmethod
    async def connect(
        cls, base_ws: str, name: str = "customer", token: str | None = None, **kwargs: Any
    ) -> Customer:
        """Open a web chat; ``token`` (an earlier ``session`` frame's) resumes an identity."""
        url = f"{base_ws}/ws/webchat/" + (f"?token={token}" if token else "")
        ws = await websockets.connect(url, open_timeout=10, **kwargs)
        session = await recv_until(ws, lambda f: f["type"] == "session", what="session frame")
        return cls(ws, session, name)

    async def send(self, text: str, within: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Send a message and return the stored message from its ``ack``."""
        self._seq += 1
        client_id = f"{self.name}-{self._seq}"
        await send_json(
            self.ws,
            {"type": "message.send", "client_id": client_id, "text": text, "request_id": client_id},
        )
        reply = await recv_until(
            self.ws,
            lambda f: f["type"] in {"ack", "error"} and f.get("request_id") == client_id,
            within,
            what=f"ack for {client_id}",
        )
        assert reply["type"] == "ack", reply
        self.acked.append(reply["message"])
        return reply["message"]

    async def close(self) -> None:
        await self.ws.close()


class Console:
    """A staff console on ``/ws/console/`` that records its event stream.

    Every ``event`` frame is checked as it arrives (``_take``): ids strictly increase and
    ``prev`` never points past what the console has seen, i.e. no gap and no duplicate.
    """

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.ws: ClientConnection | None = None
        self.opening: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.others: list[dict[str, Any]] = []
        self.last_event_id = 0

    @classmethod
    async def connect(
        cls,
        base_ws: str,
        token: str | None = None,
        *,
        within: float = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> Console:
        """A new console: ``hello`` then ``snapshot`` (kwargs go to websockets.connect)."""
        console = cls(token)
        await console._open(base_ws, None, within, **kwargs)
        return console

    async def reconnect(self, base_ws: str, within: float = DEFAULT_TIMEOUT) -> None:
        """Open a new socket with ``?last_event_id=`` the last event this console saw; the
        replayed events continue the same record (and the same gap checks)."""
        await self._open(base_ws, self.last_event_id, within)

    async def _open(
        self, base_ws: str, last_event_id: int | None, within: float, **kwargs: Any
    ) -> None:
        url = f"{base_ws}/ws/console/"
        if last_event_id is not None:
            url += f"?last_event_id={last_event_id}"
        headers = dict(kwargs.pop("additional_headers", None) or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.ws = await websockets.connect(
            url, additional_headers=headers, open_timeout=10, **kwargs
        )
        self.opening = []
        deadline = time.monotonic() + within
        hello = await recv_json(self.ws, within)
        assert hello["type"] == "hello", hello
        self.opening.append(hello)
        while True:
            frame = await self._read(max(deadline - time.monotonic(), 0.001))
            if frame is None:  # a replayed event, recorded
                continue
            self.opening.append(frame)
            if frame["type"] == "snapshot":
                self.last_event_id = frame["last_event_id"]
                return
            if frame["type"] == "resumed":
                assert frame["last_event_id"] == self.last_event_id, frame
                return

    @property
    def replayed(self) -> int | None:
        """How many events the server says it replayed (None if it was not a resume)."""
        last = self.opening[-1]
        return last["replayed"] if last["type"] == "resumed" else None

    def _take(self, frame: dict[str, Any]) -> None:
        """Record an event.  The console's position (``last_event_id``) is a point in the
        log; an event belongs right after it when ``prev <= position < id``.  Right after
        another event, ``prev`` must name exactly that event: nothing in between was lost."""
        assert frame["id"] > self.last_event_id, (
            f"event {frame['id']} not after {self.last_event_id}: duplicate or out of order"
        )
        assert frame["prev"] <= self.last_event_id, (
            f"gap: event {frame['id']} follows {frame['prev']}, position {self.last_event_id}"
        )
        if self.events and self.events[-1]["id"] == self.last_event_id:
            assert frame["prev"] == self.last_event_id, (
                f"event {frame['id']} names {frame['prev']} as previous, "
                f"but the last one seen was {self.last_event_id}"
            )
        self.events.append(frame)
        self.last_event_id = frame["id"]

    async def _read(self, within: float) -> dict[str, Any] | None:
        """One frame: events are recorded (None), anything else is returned."""
        frame = await recv_json(self.ws, within)
        if frame["type"] == "event":
            self._take(frame)
            return None
        return frame

    async def pump(
        self,
        until: Callable[[Console], bool],
        within: float = DEFAULT_TIMEOUT,
        what: str = "the console condition",
    ) -> None:
        """Read frames (recording events, keeping others in ``others``) until
        ``until(self)`` holds."""
        deadline = time.monotonic() + within
        while not until(self):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"{what} not reached within {within} s "
                    f"({len(self.messages())} message events, last id {self.last_event_id})"
                )
            try:
                frame = await self._read(left)
            except TimeoutError:
                continue
            if frame is not None:
                self.others.append(frame)

    def messages(self) -> list[dict[str, Any]]:
        """The messages of the ``chat.message_created`` events seen, in stream order."""
        return [e["data"]["message"] for e in self.events if e["name"] == MESSAGE_CREATED]

    async def request(
        self, frame: dict[str, Any], within: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Send a frame and return the reply carrying its ``request_id`` (``ack``, ``error``,
        ``pong``...), recording the events that arrive meanwhile."""
        request_id = frame.setdefault("request_id", f"req-{time.monotonic_ns()}")
        await send_json(self.ws, frame)
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to {frame['type']} within {within} s")
            try:
                reply = await self._read(left)
            except TimeoutError:
                continue
            if reply is None:
                continue
            if reply.get("request_id") == request_id:
                return reply
            self.others.append(reply)

    async def close(self) -> None:
        await self.ws.close()


def assert_stream_matches_acks(console: Console, customers: list[Customer]) -> None:
    """The console saw every acked customer message exactly once, each customer's in the
    order they were acked (the global order is commit order, checked by ``prev``)."""
    seen = [m for m in console.messages() if m["direction"] == "in"]
    seen_ids = [m["id"] for m in seen]
    assert len(seen_ids) == len(set(seen_ids)), "a message event was delivered twice"
    acked = {m["id"]: m for c in customers for m in c.acked}
    assert sorted(seen_ids) == sorted(acked), (
        f"missing {sorted(set(acked) - set(seen_ids))[:10]}, "
        f"unexpected {sorted(set(seen_ids) - set(acked))[:10]}"
    )
    by_conversation: dict[str, list[int]] = {}
    for message in seen:
        assert message["text"] == acked[message["id"]]["text"]
        by_conversation.setdefault(message["conversation_id"], []).append(message["id"])
    for customer in customers:
        if not customer.acked:
            continue
        conversation = customer.acked[0]["conversation_id"]
        acked_ids = [m["id"] for m in customer.acked]
        assert acked_ids == sorted(acked_ids), f"{customer.name}'s acks went backwards"
        assert by_conversation[conversation] == acked_ids, (
            f"{customer.name}'s messages arrived out of order"
        )
