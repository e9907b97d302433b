"""WebSocket transport for chat: the staff console and the customer web chat.

Consumers parse frames, check who is asking and call chat/routing services through
``run_db``; group handlers forward doorbells.  No rule lives here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings

from chat import selectors, services
from chat.events import SUPERVISORS_GROUP, event_frame, operator_group, user_group, webchat_group
from chat.models import Channel, CustomerIdentity
from chat.webchat import visitor_from_token, visitor_token_issue
from hub.asyncdb import run_db
from hub.auth import user_session_still_valid
from hub.roles import can_supervise, role_of
from hub.schemas import field
from hub.ws import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, HubJsonConsumer
from routing.services import presence_set

logger = logging.getLogger(__name__)


def _query(scope: dict) -> dict[str, str]:
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {k: v[-1] for k, v in parsed.items()}


def _console_setup(user: Any) -> dict[str, Any] | None:
    """Role facts the console needs at connect time (one thread hop)."""
    role = role_of(user)
    if role is None:
        return None
    return {"role": str(role), "supervisor": can_supervise(user)}


class ConsoleConsumer(HubJsonConsumer):
    """``/ws/console/``: an operator's (or supervisor's) live view.

    Streams ``event`` frames from the console event log.  On connect with
    ``?last_event_id=N`` it replays what was missed, in order, once; otherwise (or when N
    cannot be replayed, announced by a ``resync`` frame) it sends a ``snapshot``.
    """

    actions = {
        "ping": "act_ping",
        "resume": "act_resume",
        "snapshot": "act_snapshot",
        "message.send": "act_message_send",
        "conversation.history": "act_history",
        "conversation.read": "act_read",
        "conversation.close": "act_close",
        "presence.set": "act_presence",
    }

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.last_sent = 0
        self._stream_lock = asyncio.Lock()
        self._watchdog: asyncio.Task | None = None
        self.groups_joined: list[str] = []
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        setup = await run_db(_console_setup, self.user)
        if setup is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.supervisor = setup["supervisor"]
        stream = SUPERVISORS_GROUP if self.supervisor else operator_group(self.user.pk)
        for group in (stream, user_group(self.user.pk)):
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        session = self.scope.get("session")
        self._session_key = (
            None if self.scope.get("hub_token") else getattr(session, "session_key", None)
        )
        await self.send_json(
            {
                "type": "hello",
                "user": {"id": self.user.pk, "username": self.user.get_username()},
                "role": setup["role"],
                "supervisor": self.supervisor,
            }
        )
        last = _query(self.scope).get("last_event_id")
        async with self._stream_lock:
            if last is not None and last.lstrip("-").isdigit():
                await self._replay_or_snapshot(int(last))
            elif last is not None:
                await self.send_json({"type": "resync", "reason": "unknown_event_id"})
                await self._send_snapshot()
            else:
                await self._send_snapshot()
        self._watchdog = asyncio.ensure_future(self._watch())

    async def disconnect(self, code: int) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    # --- the event stream -------------------------------------------------------------
    async def _send_snapshot(self) -> None:
        snapshot = await run_db(selectors.console_snapshot, actor=self.user)
        self.last_sent = snapshot["last_event_id"]
        await self.send_json(snapshot)

    async def _replay_or_snapshot(self, last_event_id: int) -> None:
        try:
            events = await run_db(
                selectors.console_events_since,
                actor_id=self.user.pk,
                supervisor=self.supervisor,
                last_event_id=last_event_id,
                limit=settings.HUB_CONSOLE_REPLAY_LIMIT,
            )
        except selectors.ReplayUnavailable as gone:
            await self.send_json({"type": "resync", "reason": gone.reason})
            await self._send_snapshot()
            return
        self.last_sent = last_event_id
        await self._send_events(events)
        await self.send_json(
            {"type": "resumed", "last_event_id": self.last_sent, "replayed": len(events)}
        )

    async def _send_events(self, events: list) -> None:
        from chat.events import event_wire

        for event in events:
            if event.id <= self.last_sent:
                continue
            await self.send_json(event_frame(event_wire(event), supervisor=self.supervisor))
            self.last_sent = event.id

    async def _catch_up(self) -> None:
        try:
            events = await run_db(
                selectors.console_events_since,
                actor_id=self.user.pk,
                supervisor=self.supervisor,
                last_event_id=self.last_sent,
                limit=settings.HUB_CONSOLE_REPLAY_LIMIT,
            )
        except selectors.ReplayUnavailable as gone:
            await self.send_json({"type": "resync", "reason": gone.reason})
            await self._send_snapshot()
            return
        await self._send_events(events)

    async def console_event(self, message: dict) -> None:
        """Doorbell: deliver directly when nothing of this stream lies between the last event
        sent and this one (``prev <= last_sent``); otherwise a doorbell was lost: catch up."""
        wire = message["event"]
        if not self.supervisor and wire["operator_id"] != self.user.pk:
            return
        async with self._stream_lock:
            if wire["id"] <= self.last_sent:
                return
            prev = wire["prev_all"] if self.supervisor else (wire["prev_operator"] or 0)
            if prev <= self.last_sent:
                await self.send_json(event_frame(wire, supervisor=self.supervisor))
                self.last_sent = wire["id"]
            else:
                await self._catch_up()

    async def _watch(self) -> None:
        """Re-check the login, and re-read the log when idle (a doorbell may be lost)."""
        revalidate = settings.HUB_WS_REVALIDATE_SECONDS
        poll_every = settings.HUB_CONSOLE_SAFETY_POLL_SECONDS
        since_poll = 0.0
        try:
            while True:
                await asyncio.sleep(revalidate)
                since_poll += revalidate
                valid = await run_db(
                    user_session_still_valid,
                    user_id=self.user.pk,
                    session_key=self._session_key,
                    token=self.scope.get("hub_token"),
                )
                if not valid:
                    await self.send_json({"type": "closing", "reason": "session_ended"})
                    await self.close(code=CLOSE_UNAUTHENTICATED)
                    return
                if since_poll >= poll_every:
                    since_poll = 0.0
                    head = await run_db(selectors.console_head, actor=self.user)
                    if head > self.last_sent:
                        async with self._stream_lock:
                            await self._catch_up()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("console watchdog stopped", exc_info=True)

    # --- actions --------------------------------------------------------------------------
    async def act_ping(self, content: dict) -> dict:
        return {"type": "pong", "last_event_id": self.last_sent}

    async def act_resume(self, content: dict) -> None:
        last = field(content, "last_event_id", int, minimum=0)
        async with self._stream_lock:
            await self._replay_or_snapshot(last)

    async def act_snapshot(self, content: dict) -> None:
        async with self._stream_lock:
            await self._send_snapshot()

    async def act_message_send(self, content: dict) -> dict:
        result = await run_db(
            services.operator_message_send,
            actor=self.user,
            conversation_id=field(content, "conversation_id", str, max_length=64),
            client_id=field(content, "client_id", str, max_length=100),
            text=field(content, "text", str),
        )
        return {"type": "ack", "message": result.message, "created": result.created}

    async def act_history(self, content: dict) -> dict:
        history = await run_db(
            selectors.conversation_history,
            actor=self.user,
            conversation_id=field(content, "conversation_id", str, max_length=64),
            before_id=field(content, "before_id", int, required=False),
            limit=field(content, "limit", int, required=False, default=50),
        )
        return {"type": "history", **history}

    async def act_read(self, content: dict) -> dict:
        conversation = await run_db(
            services.conversation_mark_read,
            actor=self.user,
            conversation_id=field(content, "conversation_id", str, max_length=64),
            up_to_message_id=field(content, "up_to_message_id", int, minimum=0),
        )
        return {"type": "ack", "conversation": conversation}

    async def act_close(self, content: dict) -> dict:
        conversation = await run_db(
            services.conversation_close,
            actor=self.user,
            conversation_id=field(content, "conversation_id", str, max_length=64),
        )
        return {"type": "ack", "conversation": conversation}

    async def act_presence(self, content: dict) -> dict:
        state = await run_db(
            presence_set,
            actor=self.user,
            presence=field(content, "presence", str, max_length=16),
        )
        return {"type": "ack", "presence": state.presence}


def _customer_for_visitor(visitor_id: str) -> str | None:
    identity = CustomerIdentity.objects.filter(
        channel=Channel.WEBCHAT, external_id=visitor_id
    ).first()
    return str(identity.customer_id) if identity else None


class WebchatConsumer(HubJsonConsumer):
    """``/ws/webchat/``: a website visitor talking to the bank.

    ``?token=`` (from an earlier ``session`` frame) resumes an identity and its history;
    ``&after_id=`` limits the history to messages after that id.
    """

    actions = {
        "ping": "act_ping",
        "message.send": "act_message_send",
        "history": "act_history",
    }

    async def connect(self) -> None:
        query = _query(self.scope)
        self.visitor_id = visitor_from_token(query["token"]) if query.get("token") else None
        token = query.get("token")
        resumed = self.visitor_id is not None
        if self.visitor_id is None:
            self.visitor_id, token = visitor_token_issue()
        self.customer_id: str | None = None
        self.groups_joined = []
        await self.accept()
        await self.send_json(
            {"type": "session", "token": token, "visitor_id": self.visitor_id, "resumed": resumed}
        )
        if resumed:
            self.customer_id = await run_db(_customer_for_visitor, self.visitor_id)
            if self.customer_id:
                await self._join(self.customer_id)
                after = query.get("after_id")
                messages = await run_db(
                    selectors.customer_history,
                    customer_id=self.customer_id,
                    after_id=int(after) if after and after.isdigit() else None,
                )
                await self.send_json({"type": "history", "messages": messages})

    async def _join(self, customer_id: str) -> None:
        group = webchat_group(customer_id)
        if group not in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def act_ping(self, content: dict) -> dict:
        return {"type": "pong"}

    async def act_message_send(self, content: dict) -> dict:
        result = await run_db(
            services.webchat_message_receive,
            visitor_id=self.visitor_id,
            client_id=field(content, "client_id", str, max_length=100),
            text=field(content, "text", str),
            display_name=field(content, "name", str, required=False, default="", max_length=200),
        )
        if self.customer_id is None:
            self.customer_id = result.conversation["customer"]["id"]
            await self._join(self.customer_id)
        return {"type": "ack", "message": result.message, "created": result.created}

    async def act_history(self, content: dict) -> dict:
        after = field(content, "after_id", int, required=False, minimum=0)
        messages = []
        if self.customer_id:
            messages = await run_db(
                selectors.customer_history, customer_id=self.customer_id, after_id=after
            )
        return {"type": "history", "messages": messages}

    async def webchat_message(self, message: dict) -> None:
        await self.send_json({"type": "message", "message": message["message"]})

    async def webchat_closed(self, message: dict) -> None:
        await self.send_json({"type": "conversation_closed"})
