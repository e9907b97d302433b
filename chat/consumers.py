"""WebSocket transport for chat: the staff console and the customer web chat.

Consumers parse frames, check who is asking and call chat/routing services through
``run_db``; group handlers forward doorbells.  No rule lives here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings

from chat import selectors, services
from chat.channels.webchat import visitor_from_token, visitor_token_issue, visitor_token_renew
from chat.events import SUPERVISORS_GROUP, event_frame, operator_group, user_group, webchat_group
from hub.asyncdb import run_db
from hub.auth import logins_still_valid
from hub.schemas import field
from hub.ws import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, HubJsonConsumer
from routing import selectors as routing_selectors
from routing import services as routing_services
from routing.services import operators_console_seen, presence_set

logger = logging.getLogger(__name__)


def _query(scope: dict) -> dict[str, str]:
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {k: v[-1] for k, v in parsed.items()}


class ConsoleWatch:
    """One task per process watching every open console, instead of one task per socket.

    Every ``HUB_WS_REVALIDATE_SECONDS`` it checks all consoles' logins in one query and closes
    the sockets of users who logged out or were disabled.  Every
    ``HUB_CONSOLE_SAFETY_POLL_SECONDS`` it reads the head of each open stream in one query
    and tells a console that is behind (its last doorbell was lost) to catch up from the log.
    """

    def __init__(self) -> None:
        self.consoles: dict[str, ConsoleConsumer] = {}
        self._task: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()
        # Consoles that just opened, waiting for their one head check (see ``add``).
        self._fresh: dict[str, ConsoleConsumer] = {}
        self._fresh_task: asyncio.Task | None = None

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def add(self, console: ConsoleConsumer, *, fresh: bool = False) -> None:
        """Watch a console.  ``fresh``: it has just read the log and then joined its
        groups, so check its stream head once, soon — batched with every console that
        opened in the same few milliseconds (one query for a whole reconnect storm)."""
        self.consoles[console.channel_name] = console
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())
        if fresh:
            self._fresh[console.channel_name] = console
            task = self._fresh_task
            if task is None or task.done() or task.get_loop() is not loop:
                self._fresh_task = loop.create_task(self._check_fresh())

    def discard(self, console: ConsoleConsumer) -> None:
        self.consoles.pop(getattr(console, "channel_name", ""), None)
        self._fresh.pop(getattr(console, "channel_name", ""), None)

    async def _check_fresh(self) -> None:
        while self._fresh:
            await asyncio.sleep(FRESH_CHECK_DELAY_SECONDS)
            batch, self._fresh = list(self._fresh.values()), {}
            try:
                await self._catch_up_behind(batch)
            except Exception:  # the periodic safety poll covers these consoles too
                logger.warning("fresh console head check failed", exc_info=True)

    async def _run(self) -> None:
        since_poll = 0.0
        since_seen = settings.HUB_CONSOLE_SEEN_SECONDS  # mark new consoles seen at once
        while self.consoles:
            revalidate = settings.HUB_WS_REVALIDATE_SECONDS
            await asyncio.sleep(revalidate)
            since_poll += revalidate
            since_seen += revalidate
            try:
                await self._revalidate()
                if since_poll >= settings.HUB_CONSOLE_SAFETY_POLL_SECONDS:
                    since_poll = 0.0
                    await self._poll_heads()
                if since_seen >= settings.HUB_CONSOLE_SEEN_SECONDS:
                    since_seen = 0.0
                    user_ids = sorted({c.user.pk for c in self.consoles.values()})
                    await run_db(operators_console_seen, user_ids=user_ids)
            except Exception:  # the watch must outlive a database or network hiccup
                logger.warning("console watch round failed", exc_info=True)
        self._task = None

    async def _revalidate(self) -> None:
        consoles = list(self.consoles.values())
        logins = [(c.user.pk, c.session_key, c.scope.get("hub_token")) for c in consoles]
        verdicts = await run_db(logins_still_valid, logins)
        for console, valid in zip(consoles, verdicts, strict=True):
            if not valid:
                self.discard(console)
                self._spawn(console.close_for("session_ended"))

    async def _poll_heads(self) -> None:
        await self._catch_up_behind(list(self.consoles.values()))

    async def _catch_up_behind(self, consoles: list[ConsoleConsumer]) -> None:
        """Tell each console whose stream head is past what it has sent to catch up."""
        operator_ids = sorted({c.user.pk for c in consoles if not c.supervisor})
        heads = await run_db(selectors.stream_heads, operator_ids=operator_ids)
        log_head = 0
        if any(c.supervisor for c in consoles):
            log_head = await run_db(selectors.log_head)
        for console in consoles:
            head = log_head if console.supervisor else heads.get(console.user.pk, 0)
            if head > console.last_sent:
                self._spawn(console.catch_up_if_behind(head))


# How long a just-opened console waits for its head check: long enough to batch a storm's
# consoles into one query, short enough that an event racing the handshake arrives at once.
FRESH_CHECK_DELAY_SECONDS = 0.05

console_watch = ConsoleWatch()


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
        "note.send": "act_note_send",
        "conversation.history": "act_history",
        "conversation.read": "act_read",
        "conversation.close": "act_close",
        "presence.set": "act_presence",
        "conversation.transfer": "act_transfer",
        "conversation.set_type": "act_set_type",
        "derivation.preview": "act_derivation_preview",
        "derivation.run": "act_derivation_run",
        "routing.options": "act_routing_options",
        "kb.search": "act_kb_search",
        "kb.render": "act_kb_render",
        "template.options": "act_template_options",
        "template.send": "act_template_send",
        "outreach.customers": "act_outreach_customers",
        "outreach.start": "act_outreach_start",
    }

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.last_sent = 0
        self._stream_lock = asyncio.Lock()
        self.groups_joined: list[str] = []
        await self.accept()
        token = self.scope.get("hub_token")
        if token is None and (self.user is None or not self.user.is_authenticated):
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        opening = await run_db(
            selectors.console_open,
            actor=self.user,
            token=token,
            last_event_id=_query(self.scope).get("last_event_id"),
            limit=settings.HUB_CONSOLE_REPLAY_LIMIT,
        )
        if opening.refused is not None:
            forbidden = opening.refused == "forbidden"
            await self.close(code=CLOSE_FORBIDDEN if forbidden else CLOSE_UNAUTHENTICATED)
            return
        self.user = opening.user
        self.supervisor = opening.setup["supervisor"]
        session = self.scope.get("session")
        self.session_key = None if token else getattr(session, "session_key", None)
        stream = SUPERVISORS_GROUP if self.supervisor else operator_group(self.user.pk)
        async with self._stream_lock:
            # Doorbells arriving from here on wait for the lock and are dropped when the
            # frames below already hold them (ids at or below last_sent).
            for group in (stream, user_group(self.user.pk)):
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.append(group)
            await self.send_json(
                {
                    "type": "hello",
                    "user": {"id": self.user.pk, "username": self.user.get_username()},
                    "role": opening.setup["role"],
                    "supervisor": self.supervisor,
                    "presence": opening.setup["presence"],
                }
            )
            for frame in opening.frames:
                await self.send_json(frame)
            self.last_sent = opening.last_sent
        # An event committed after the read above but before the join rang no doorbell
        # here: the watch checks this console's stream head once, batched with the others.
        console_watch.add(self, fresh=True)

    async def disconnect(self, code: int) -> None:
        console_watch.discard(self)
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

    async def catch_up_if_behind(self, head: int) -> None:
        """Called by the process's console watch when this stream's head is past us."""
        async with self._stream_lock:
            if head > self.last_sent:
                await self._catch_up()

    async def close_for(self, reason: str) -> None:
        await self.send_json({"type": "closing", "reason": reason})
        await self.close(code=CLOSE_UNAUTHENTICATED)

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

    async def act_note_send(self, content: dict) -> dict:
        result = await run_db(
            services.conversation_note_add,
            actor=self.user,
            conversation_id=field(content, "conversation_id", str, max_length=64),
            client_id=field(content, "client_id", str, max_length=100),
            text=field(content, "text", str),
        )
        return {"type": "ack", "note": result.note, "created": result.created}

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
            resolution_id=field(content, "resolution_id", int, required=False, minimum=1),
        )
        return {"type": "ack", "conversation": conversation}

    async def act_presence(self, content: dict) -> dict:
        state = await run_db(
            presence_set,
            actor=self.user,
            presence=field(content, "presence", str, max_length=16),
        )
        return {"type": "ack", "presence": state.presence}

    # ``to_operator_id`` must be present; an explicit null means "the queue" (transfer) or
    # "spread over the online operators" (derivation).  field() treats null as absent, so
    # it is required only when the key is missing: absent → missing_field, null → None.
    async def act_transfer(self, content: dict) -> dict:
        conversation = await run_db(
            routing_services.conversation_transfer,
            actor=self.user,
            conversation_id=field(content, "conversation_id", str, max_length=64),
            to_operator_id=field(content, "to_operator_id", int, nullable=True, minimum=1),
            note=field(content, "note", str, required=False, default="", max_length=2000),
            force=field(content, "force", bool, required=False, default=False),
        )
        return {"type": "ack", "conversation": conversation}

    async def act_set_type(self, content: dict) -> dict:
        conversation = await run_db(
            routing_services.conversation_type_set,
            actor=self.user,
            conversation_id=field(content, "conversation_id", str, max_length=64),
            query_type_id=field(content, "query_type_id", int, minimum=1),
        )
        return {"type": "ack", "conversation": conversation}

    async def act_derivation_preview(self, content: dict) -> dict:
        plan = await run_db(
            routing_services.derivation_preview,
            actor=self.user,
            from_operator_id=field(content, "from_operator_id", int, minimum=1),
            to_operator_id=field(content, "to_operator_id", int, nullable=True, minimum=1),
            force=field(content, "force", bool, required=False, default=False),
        )
        return {"type": "derivation_preview", **plan}

    async def act_derivation_run(self, content: dict) -> dict:
        summary = await run_db(
            routing_services.operator_conversations_derive,
            actor=self.user,
            from_operator_id=field(content, "from_operator_id", int, minimum=1),
            to_operator_id=field(content, "to_operator_id", int, nullable=True, minimum=1),
            force=field(content, "force", bool, required=False, default=False),
            note=field(content, "note", str, required=False, default="", max_length=2000),
        )
        return {"type": "ack", "derivation": summary}

    async def act_routing_options(self, content: dict) -> dict:
        options = await run_db(routing_selectors.routing_options, actor=self.user)
        return {"type": "routing_options", **options}

    async def act_kb_search(self, content: dict) -> dict:
        from knowledge_base.selectors import reply_search

        query = field(content, "query", str, max_length=200)
        replies = await run_db(
            reply_search,
            actor=self.user,
            query=query,
            conversation_id=field(content, "conversation_id", str, required=False, max_length=64),
            limit=field(content, "limit", int, required=False, default=10, minimum=1),
        )
        return {"type": "kb_results", "query": query, "replies": replies}

    async def act_kb_render(self, content: dict) -> dict:
        from knowledge_base.services import reply_render

        rendered = await run_db(
            reply_render,
            actor=self.user,
            reply_id=field(content, "reply_id", int, minimum=1),
            conversation_id=field(content, "conversation_id", str, max_length=64),
        )
        return {"type": "kb_rendered", **rendered}

    # --- WhatsApp templates (hsm): the picker when the reply window is closed, outreach ----
    async def act_template_options(self, content: dict) -> dict:
        from hsm.selectors import conversation_templates

        options = await run_db(
            conversation_templates,
            actor=self.user,
            conversation_id=field(content, "conversation_id", str, required=False, max_length=64),
        )
        return {"type": "template_options", **options}

    async def act_template_send(self, content: dict) -> dict:
        from hsm.services import template_send

        result = await run_db(
            template_send,
            actor=self.user,
            conversation_id=field(content, "conversation_id", str, max_length=64),
            template_id=field(content, "template_id", int, minimum=1),
            parameters=field(content, "parameters", list, required=False, default=[]),
            client_id=field(content, "client_id", str, max_length=100),
        )
        return {"type": "ack", "message": result.message, "created": result.created}

    async def act_outreach_customers(self, content: dict) -> dict:
        from hsm.selectors import outreach_customers

        query = field(content, "query", str, required=False, default="", max_length=100)
        customers = await run_db(
            outreach_customers,
            actor=self.user,
            query=query,
            limit=field(content, "limit", int, required=False, default=10, minimum=1),
        )
        return {"type": "outreach_customers", "query": query, "customers": customers}

    async def act_outreach_start(self, content: dict) -> dict:
        from hsm.services import outreach_start

        result = await run_db(
            outreach_start,
            actor=self.user,
            customer_id=field(content, "customer_id", str, max_length=64),
            template_id=field(content, "template_id", int, minimum=1),
            parameters=field(content, "parameters", list, required=False, default=[]),
            client_id=field(content, "client_id", str, max_length=100),
        )
        return {
            "type": "ack",
            "message": result.message,
            "conversation": result.conversation,
            "created": result.created,
        }


class WebchatConsumer(HubJsonConsumer):
    """``/ws/webchat/``: a website visitor talking to the bank.

    ``?token=`` (from an earlier ``session`` frame) resumes an identity and its history;
    ``&after_id=`` limits the history to messages after that id.

    A socket with no customer yet joins the customer's group only after its first message
    is stored, so whatever the hub wrote in that transaction (the type menu, the queue
    position, the out-of-hours reply) rang its doorbell too early for it: once joined, the
    socket reads what followed its message from the database (``_catch_up``).  Frames it
    sends that way are remembered, so a doorbell that arrives for them afterwards is not
    delivered twice.
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
        else:  # a fresh signature: an active visitor's identity never ages out
            token = visitor_token_renew(self.visitor_id)
        self.customer_id: str | None = None
        # The website's query type for new conversations (``?type=payments``), if any.
        self.entry_point = (query.get("type") or "")[:200] or None
        self.groups_joined = []
        self._join_retry: asyncio.Task | None = None
        # Pending catch-up after joining: (first message id, its conversation id).
        self._catch_up_from: tuple[int, str] | None = None
        self._delivered = RecentIds()  # message ids sent by ``_catch_up`` or live
        self._closed_sent = False  # a catch-up said conversation_closed; no message since
        await self.accept()
        await self.send_json(
            {"type": "session", "token": token, "visitor_id": self.visitor_id, "resumed": resumed}
        )
        if resumed:
            self.customer_id = await run_db(
                selectors.customer_id_for_visitor, visitor_id=self.visitor_id
            )
            if self.customer_id:
                await self._join(self.customer_id)
                after = query.get("after_id")
                if not (after and selectors.CURSOR_PATTERN.fullmatch(after)):
                    after = None
                messages = await run_db(
                    selectors.customer_history,
                    customer_id=self.customer_id,
                    after_id=int(after)
                    if after and selectors.CURSOR_PATTERN.fullmatch(after)
                    else None,
                )
                for message in messages:  # their doorbells may be queued behind this read
                    self._delivered.add(message["id"])
                await self.send_json({"type": "history", "messages": messages})

    async def _join(self, customer_id: str) -> None:
        group = webchat_group(customer_id)
        if group not in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)

    async def _join_or_retry(self, customer_id: str) -> None:
        """Join the customer's group after their first message.  The message is already
        stored and must be acknowledged, so a channel layer that is down (Redis restarting)
        does not fail the frame: the join is retried in the background until it succeeds,
        then catches up."""
        try:
            await self._join(customer_id)
        except Exception:  # the layer's error types depend on its backend
            logger.warning("web chat could not join its group; retrying", exc_info=True)
            self._join_retry = asyncio.ensure_future(self._retry_join(customer_id))

    async def _retry_join(self, customer_id: str) -> None:
        delay = 0.25
        while True:
            await asyncio.sleep(delay)
            try:
                await self._join(customer_id)
                break
            except Exception:
                delay = min(delay * 2, 1.0)
        try:
            await self._catch_up()
        except Exception:  # nothing is lost: the widget's next reconnect reads the gap
            logger.warning("web chat could not catch up after joining", exc_info=True)

    async def _catch_up(self) -> None:
        """Send what was stored after this socket's first message, now that it is in the
        group: read after the join, so anything committed later rings its doorbell here."""
        if self._catch_up_from is None:
            return
        after_id, conversation_id = self._catch_up_from
        self._catch_up_from = None
        missed = await run_db(
            selectors.webchat_since,
            customer_id=self.customer_id,
            conversation_id=conversation_id,
            after_id=after_id,
        )
        for message in missed["messages"]:
            await self._deliver(message)
        if missed["closed"]:
            self._closed_sent = True
            await self.send_json({"type": "conversation_closed"})

    async def _deliver(self, message: dict) -> None:
        # Marked before the await: a doorbell handled meanwhile sees it as sent.
        if not self._delivered.add(message["id"]):
            return
        self._closed_sent = False
        await self.send_json({"type": "message", "message": message})

    async def disconnect(self, code: int) -> None:
        if getattr(self, "_join_retry", None) is not None:
            self._join_retry.cancel()
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
            entry_point=self.entry_point,
            language=field(content, "language", str, required=False, max_length=16),
            time_zone=field(content, "time_zone", str, required=False, max_length=64),
        )
        if self.customer_id is None:
            self.customer_id = result.conversation["customer"]["id"]
            self._catch_up_from = (result.message["id"], result.message["conversation_id"])
            # Joined now: ``receive_json`` catches up after the ack; otherwise the
            # background join does once it succeeds.
            await self._join_or_retry(self.customer_id)
        return {"type": "ack", "message": result.message, "created": result.created}

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Answer the frame, then catch up if it was the first message: the ``ack`` comes
        before the hub's replies to it, as it would have had the socket been in the group."""
        await super().receive_json(content, **kwargs)
        if self._catch_up_from is not None and self._join_retry is None:
            await self._catch_up()

    async def act_history(self, content: dict) -> dict:
        after = field(content, "after_id", int, required=False, minimum=0)
        messages = []
        if self.customer_id:
            messages = await run_db(
                selectors.customer_history, customer_id=self.customer_id, after_id=after
            )
        return {"type": "history", "messages": messages}

    async def webchat_message(self, message: dict) -> None:
        await self._deliver(message["message"])

    async def webchat_closed(self, message: dict) -> None:
        if self._closed_sent:  # the catch-up already said so
            self._closed_sent = False
            return
        await self.send_json({"type": "conversation_closed"})


class RecentIds:
    """The last ``size`` message ids a web chat socket was sent, to drop a second copy (a
    catch-up read and a late doorbell can carry the same message).  Bounded: a socket
    open for days keeps only the ids a duplicate could still race with."""

    def __init__(self, size: int = 256) -> None:
        self._order: deque[int] = deque()
        self._ids: set[int] = set()
        self._size = size

    def add(self, message_id: int) -> bool:
        """Record an id; False when it was already recorded."""
        if message_id in self._ids:
            return False
        self._ids.add(message_id)
        self._order.append(message_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True
