"""WhatsApp Cloud API stand-in: an external system, not a hub layer.

An aiohttp application that plays Meta's WhatsApp Cloud API for the hub's WhatsApp adapter,
exactly as docs/whatsapp-contract.md describes, with the provider behaviours an adapter has
to survive: signed webhooks, status callbacks that arrive after the send answer (sometimes
twice, sometimes out of order), the 24-hour customer-service window (error 131047), rate
limits, 5xx answers, hung requests and webhook retries.  A control API under ``/_standin/``
and an HTML page to play the customer drive it from tests and demos
(docs/whatsapp-standin.md).

It imports neither Django nor any hub module on purpose: it is somebody else's system, and
it must run on its own::

    python -m chat.channels.whatsapp_standin --port 8081 --webhook-url URL
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from hub.standin_server import app_served, serve_until_signalled

log = logging.getLogger(__name__)

#: Session (non-template) messages need an inbound message within this many seconds.
WINDOW_SECONDS = 24 * 60 * 60
#: Upper bound of an injected "timeout" fault, so a typo cannot hang a test run.
MAX_HOLD_SECONDS = 120.0
MAX_TEXT_CHARS = 4096
WEBHOOK_LOG_LIMIT = 500
MESSAGES_PER_CUSTOMER = 500

_WA_ID = re.compile(r"^\+?[0-9]{6,15}$")
# Only what the provider knows moves forward: a late "sent" never undoes "delivered".
_STATUS_RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
_SESSION_TYPES = {
    "text",
    "interactive",
    "image",
    "document",
    "audio",
    "video",
    "sticker",
    "location",
    "contacts",
    "reaction",
}
_MEDIA_TYPES = {
    "image": "image/jpeg",
    "document": "application/pdf",
    "audio": "audio/ogg; codecs=opus",
    "video": "video/mp4",
    "sticker": "image/webp",
}

# code -> (message, details).  Written for this stand-in, after the provider's error table.
_ERRORS: dict[int, tuple[str, str]] = {
    100: ("Invalid parameter", "The request has a missing, malformed or unsupported parameter."),
    190: ("Invalid OAuth access token - Cannot parse access token", ""),
    368: ("Temporarily blocked for policies violations", "The sender is temporarily blocked."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131000: ("Something went wrong", "Message failed to send because of an unknown error."),
    131008: ("Required parameter is missing", "A required parameter is missing."),
    131009: ("Parameter value is not valid", "A parameter value is not valid."),
    131026: ("Message undeliverable", "Unable to deliver the message to this recipient."),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    131051: ("Unsupported message type", "Message type is not currently supported."),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages from this number to the same recipient in a short time.",
    ),
    132000: ("Number of parameters does not match the expected number of params", ""),
    132001: ("Template name does not exist in the translation", ""),
    133010: ("Phone number not registered", "The business phone number is not registered."),
}


def _error_object(code: int, *, with_title: bool = False) -> dict[str, Any]:
    message, details = _ERRORS.get(code, ("Unknown error", ""))
    error: dict[str, Any] = {"code": code}
    if with_title:
        error["title"] = message
    error["message"] = message
    if details:
        error["error_data"] = {"details": details}
    return error


#: The "failed" status error for a session message outside the customer-service window.
REENGAGEMENT_ERROR: dict[str, Any] = _error_object(131047, with_title=True)
_UNSUPPORTED_INBOUND_ERROR: dict[str, Any] = _error_object(131051, with_title=True)


@dataclass(frozen=True)
class StandinConfig:
    """How one stand-in is built.  The secrets must match the hub's WhatsApp settings."""

    webhook_url: str
    app_secret: str
    verify_token: str
    access_token: str
    phone_number_id: str = "100200300"
    api_version: str = "v21.0"
    #: Gap before each status callback (sent, delivered, read).
    status_delay_seconds: float = 0.05
    waba_id: str = "100200300400500"
    display_phone_number: str = "15550001111"
    auto_read: bool = False
    duplicate_webhooks: bool = False
    reverse_status_order: bool = False
    webhook_attempts: int = 3
    #: Sleep after failed attempt 1, 2, …; the last value repeats.
    webhook_backoff_seconds: tuple[float, ...] = (0.2, 0.4)
    webhook_timeout_seconds: float = 5.0
    #: Wall clock the 24-hour rule starts from; /_standin/clock adds an offset to it.
    clock: Callable[[], float] = time.time


@dataclass
class _Settings:
    """What the control API may change at run time (reset restores the config's values)."""

    webhook_url: str
    status_delay_seconds: float
    auto_read: bool
    duplicate_webhooks: bool
    reverse_status_order: bool
    bad_signature: bool = False


@dataclass
class _Fault:
    status: int | None
    code: int | None
    timeout_seconds: float
    remaining: int


@dataclass
class _Customer:
    wa_id: str
    name: str = ""
    last_inbound_at: float | None = None
    messages: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=MESSAGES_PER_CUSTOMER)
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _wamid() -> str:
    return "wamid." + base64.urlsafe_b64encode(secrets.token_bytes(27)).decode()


def _fbtrace_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(9)).decode()


def sign(body: bytes, app_secret: str) -> str:
    """The X-Hub-Signature-256 value of ``body``: HMAC-SHA256 of the exact bytes, hex."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class StandinState:
    """Everything one stand-in remembers, in memory, plus its webhook sender."""

    def __init__(self, config: StandinConfig) -> None:
        self.config = config
        self.session: ClientSession | None = None
        self.closing = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()
        self._forget()

    def _forget(self) -> None:
        c = self.config
        self.settings = _Settings(
            webhook_url=c.webhook_url,
            status_delay_seconds=c.status_delay_seconds,
            auto_read=c.auto_read,
            duplicate_webhooks=c.duplicate_webhooks,
            reverse_status_order=c.reverse_status_order,
        )
        self.clock_offset = 0.0
        self.customers: dict[str, _Customer] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.faults: deque[_Fault] = deque()
        self.webhooks: deque[dict[str, Any]] = deque(maxlen=WEBHOOK_LOG_LIMIT)
        self.webhook_seq = 0

    # -- clock, customers, faults ---------------------------------------------------------

    def now(self) -> float:
        return self.config.clock() + self.clock_offset

    def customer(self, wa_id: str) -> _Customer:
        wa_id = wa_id.lstrip("+")
        if wa_id not in self.customers:
            self.customers[wa_id] = _Customer(wa_id=wa_id)
        return self.customers[wa_id]

    def window_open(self, customer: _Customer) -> bool:
        """True while the customer wrote within 24 h: as on the real provider, a customer
        who never wrote has no open window either."""
        last = customer.last_inbound_at
        return last is not None and self.now() - last < WINDOW_SECONDS

    def remember(self, customer: _Customer, record: dict[str, Any]) -> None:
        if len(customer.messages) == customer.messages.maxlen:
            self.messages.pop(customer.messages[0]["id"], None)
        customer.messages.append(record)
        self.messages[record["id"]] = record

    def take_fault(self) -> _Fault | None:
        if not self.faults:
            return None
        fault = self.faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self.faults.popleft()
        return fault

    async def hold(self, seconds: float) -> bool:
        """Sleep like a hung provider; False if the stand-in is shutting down meanwhile."""
        try:
            await asyncio.wait_for(self.closing.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    # -- background tasks -----------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, tracked so that reset and cleanup can stop it."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("stand-in background task failed", exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        tasks = [t for t in self.tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def reset(self) -> None:
        await self.cancel_tasks()
        self._forget()

    # -- webhooks -------------------------------------------------------------------------

    def envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        """Wrap a change value the way the provider does (one entry, one change)."""
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.config.display_phone_number,
                "phone_number_id": self.config.phone_number_id,
            },
            **value,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": self.config.waba_id, "changes": [{"value": value, "field": "messages"}]}
            ],
        }

    async def deliver(self, kind: str, ref: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Sign and POST one webhook (twice with duplicate_webhooks); returns the log rows."""
        # Compact, ASCII-escaped JSON like the provider's: a hub that re-serializes the body
        # before checking the signature fails on the first accented name.
        raw = json.dumps(payload, separators=(",", ":")).encode()
        secret = self.config.app_secret
        if self.settings.bad_signature:
            secret += "-not-the-app-secret"
        signature = sign(raw, secret)
        copies = 2 if self.settings.duplicate_webhooks else 1
        return [
            await self._post(kind, ref, payload, raw, signature, duplicate=copy > 0)
            for copy in range(copies)
        ]

    async def _post(
        self,
        kind: str,
        ref: str,
        payload: dict[str, Any],
        raw: bytes,
        signature: str,
        *,
        duplicate: bool,
    ) -> dict[str, Any]:
        c = self.config
        self.webhook_seq += 1
        url = self.settings.webhook_url
        entry: dict[str, Any] = {
            "seq": self.webhook_seq,
            "kind": kind,
            "ref": ref,
            "duplicate": duplicate,
            "url": url,
            "at": _iso(self.now()),
            "signature": signature,
            "body": payload,
            "attempts": [],
            "hub_status": None,
            "ok": False,
        }
        self.webhooks.append(entry)
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature,
            "User-Agent": "facebookexternalua",
        }
        for attempt in range(1, c.webhook_attempts + 1):
            status: int | None = None
            error: str | None = None
            try:
                async with self._session().post(
                    url,
                    data=raw,
                    headers=headers,
                    timeout=ClientTimeout(total=c.webhook_timeout_seconds),
                ) as resp:
                    await resp.content.read(4096)
                    status = resp.status
            except (ClientError, TimeoutError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            entry["attempts"].append({"status": status, "error": error})
            entry["hub_status"] = status
            if status is not None and 200 <= status < 300:
                entry["ok"] = True
                break
            if attempt < c.webhook_attempts and c.webhook_backoff_seconds:
                backoff = c.webhook_backoff_seconds
                await asyncio.sleep(backoff[min(attempt, len(backoff)) - 1])
        if not entry["ok"]:
            log.warning("webhook %s %s not accepted: %s", kind, ref, entry["attempts"])
        return entry

    async def verify(self, verify_token: str | None = None) -> dict[str, Any]:
        """Perform the subscription handshake (GET with hub.challenge) against the hub."""
        challenge = str(secrets.randbelow(9 * 10**9) + 10**9)
        token = self.config.verify_token if verify_token is None else verify_token
        params = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": challenge}
        status: int | None = None
        echoed: str | None = None
        error: str | None = None
        try:
            async with self._session().get(
                self.settings.webhook_url,
                params=params,
                timeout=ClientTimeout(total=self.config.webhook_timeout_seconds),
            ) as resp:
                status = resp.status
                echoed = (await resp.content.read(1024)).decode(errors="replace")
        except (ClientError, TimeoutError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        result = {
            "ok": status == 200 and echoed == challenge,
            "status": status,
            "challenge": challenge,
            "echoed": echoed,
            "error": error,
        }
        self.webhook_seq += 1
        self.webhooks.append(
            {
                "seq": self.webhook_seq,
                "kind": "verify",
                "ref": challenge,
                "duplicate": False,
                "url": self.settings.webhook_url,
                "at": _iso(self.now()),
                "attempts": [{"status": status, "error": error}],
                "hub_status": status,
                "ok": result["ok"],
            }
        )
        return result

    def _session(self) -> ClientSession:
        if self.session is None:
            raise RuntimeError("the stand-in app is not running")
        return self.session


STATE = web.AppKey("whatsapp_standin_state", StandinState)


# -- Cloud API (hub -> stand-in) ----------------------------------------------------------


def _error(
    status: int, code: int, message: str | None = None, *, subcode: int | None = None
) -> web.Response:
    default_message, details = _ERRORS.get(code, ("Unknown error", ""))
    error: dict[str, Any] = {"message": message or default_message, "type": "OAuthException"}
    error["code"] = code
    if subcode is not None:
        error["error_subcode"] = subcode
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = _fbtrace_id()
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'OAuth "Facebook Platform" "invalid_token"'
    return web.json_response({"error": error}, status=status, headers=headers)


def _invalid(message: str) -> web.Response:
    return _error(400, 100, f"(#100) {message}", subcode=2494010)


def _default_code(status: int) -> int:
    if status == 429:
        return 130429
    if status == 401:
        return 190
    if status >= 500:
        return 131000
    return 100


def _bearer_ok(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def _send_problem(body: Any) -> str | None:
    """Why a send request is malformed, or None: the checks the hub can trip over."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object"
    if body.get("messaging_product") != "whatsapp":
        return "The parameter messaging_product is required and must be 'whatsapp'"
    if body.get("recipient_type", "individual") != "individual":
        return "Param recipient_type must be 'individual'"
    to = body.get("to")
    if not isinstance(to, str) or not _WA_ID.match(to):
        return "The parameter to must be a phone number in international format"
    mtype = body.get("type", "text")
    if mtype == "text":
        text = body.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("body"), str):
            return "The parameter text['body'] is required"
        if not text["body"].strip():
            return "Param text['body'] must not be empty"
        if len(text["body"]) > MAX_TEXT_CHARS:
            return f"Param text['body'] must be at most {MAX_TEXT_CHARS} characters long"
        if not isinstance(text.get("preview_url", False), bool):
            return "Param text['preview_url'] must be a boolean"
        return None
    if mtype == "template":
        template = body.get("template")
        if not isinstance(template, dict):
            return "The parameter template is required"
        if not isinstance(template.get("name"), str) or not template["name"]:
            return "The parameter template['name'] is required"
        language = template.get("language")
        if not isinstance(language, dict) or not isinstance(language.get("code"), str):
            return "The parameter template['language']['code'] is required"
        if not isinstance(template.get("components", []), list):
            return "Param template['components'] must be an array"
        return None
    if mtype in _SESSION_TYPES:
        if not isinstance(body.get(mtype), dict):
            return f"The parameter {mtype} is required"
        return None
    return f"Unsupported message type: {mtype!r}"


async def send_message(request: web.Request) -> web.StreamResponse:
    """POST /{version}/{phone_number_id}/messages: accept, answer, then report statuses."""
    state = request.app[STATE]
    if not _bearer_ok(request, state.config.access_token):
        return _error(401, 190)
    phone_number_id = request.match_info["phone_number_id"]
    if phone_number_id != state.config.phone_number_id:
        return _error(
            400,
            100,
            f"Unsupported post request. Object with ID '{phone_number_id}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation.",
            subcode=33,
        )
    fault = state.take_fault()
    if fault is not None:
        if fault.timeout_seconds > 0 and not await state.hold(fault.timeout_seconds):
            return _error(503, 131000)
        if fault.status is not None:
            return _error(fault.status, fault.code or _default_code(fault.status))
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _invalid("The request body is not valid JSON")
    problem = _send_problem(body)
    if problem is not None:
        return _invalid(problem)

    mtype = body.get("type", "text")
    customer = state.customer(body["to"])
    now = state.now()
    record: dict[str, Any] = {
        "id": _wamid(),
        "direction": "out",
        "to": customer.wa_id,
        "type": mtype,
        "status": "accepted",
        "received_at": _iso(now),
        "timestamp": str(int(now)),
        "statuses": [],
    }
    if mtype == "text":
        record["text"] = body["text"]["body"]
    else:
        record[mtype] = body[mtype]
    # The window is judged when the provider accepts the message, as the real one does.
    failure = None if mtype == "template" or state.window_open(customer) else REENGAGEMENT_ERROR
    state.remember(customer, record)

    answer: dict[str, Any] = {"id": record["id"]}
    if mtype == "template":
        answer["message_status"] = "accepted"
    response = web.json_response(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": customer.wa_id}],
            "messages": [answer],
        }
    )
    # Put the answer on the wire before any status callback can start, so the hub always
    # knows the id first.  A client that already gave up (a held request) still gets its
    # message sent: the provider accepted it, which is the ambiguity a timeout leaves.
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        log.info("client left before the answer to %s", record["id"])
    state.spawn(_status_flow(state, record, failure))
    return response


def _advance(record: dict[str, Any], status: str, ts: float) -> None:
    record["statuses"].append({"status": status, "timestamp": str(int(ts))})
    if _STATUS_RANK[status] > _STATUS_RANK[record["status"]]:
        record["status"] = status


def _status_payload(
    state: StandinState, record: dict[str, Any], status: str, ts: float
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": record["id"],
        "status": status,
        "timestamp": str(int(ts)),
        "recipient_id": record["to"],
    }
    if status == "failed":
        item["errors"] = record.get("errors", [])
    return state.envelope({"statuses": [item]})


async def _status_flow(
    state: StandinState, record: dict[str, Any], failure: dict[str, Any] | None
) -> None:
    """sent → delivered (→ read), or only failed.  With reverse_status_order the provider
    still lives through them in order (timestamps, record) but posts "sent" last."""
    s = state.settings
    delay = s.status_delay_seconds
    if failure is not None:
        record["errors"] = [failure]
        plan = ["failed"]
    else:
        plan = ["sent", "delivered"] + (["read"] if s.auto_read else [])
    held: dict[str, Any] | None = None
    for status in plan:
        await asyncio.sleep(delay)
        ts = state.now()
        _advance(record, status, ts)
        payload = _status_payload(state, record, status, ts)
        if status == "sent" and s.reverse_status_order:
            held = payload
            continue
        await state.deliver("status", f"{record['id']} {status}", payload)
        if held is not None:
            await state.deliver("status", f"{record['id']} sent", held)
            held = None


async def _read_flow(state: StandinState, records: list[dict[str, Any]]) -> None:
    for record in records:
        await state.deliver(
            "status",
            f"{record['id']} read",
            _status_payload(state, record, "read", state.now()),
        )


# -- control API (tests and the demo page) ------------------------------------------------


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json_object(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body is not valid JSON"}), content_type="application/json"
        ) from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}),
            content_type="application/json",
        )
    return data


def _wa_id(request: web.Request) -> str:
    wa_id = request.match_info["wa_id"]
    if not _WA_ID.match(wa_id):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "wa_id must be 6 to 15 digits"}),
            content_type="application/json",
        )
    return wa_id.lstrip("+")


def _inbound_message(
    state: StandinState, customer: _Customer, data: dict[str, Any]
) -> dict[str, Any] | str:
    """The "messages" item for what the customer typed, or why it cannot be built."""
    kinds = [
        k
        for k in ("text", "interactive", "button", "location", "unsupported", *_MEDIA_TYPES)
        if k in data
    ]
    if len(kinds) != 1:
        return "give exactly one of text, interactive, button, location, image, document, " + (
            "audio, video, sticker, unsupported"
        )
    kind = kinds[0]
    content = data[kind]
    now = state.now()
    message: dict[str, Any] = {"from": customer.wa_id, "id": _wamid(), "timestamp": str(int(now))}
    context_id = data.get("context_id")
    if context_id is None and kind in ("interactive", "button"):
        # Replies to buttons always quote the business message they answer.
        last_out = next((m for m in reversed(customer.messages) if m["direction"] == "out"), None)
        context_id = last_out["id"] if last_out else None
    if context_id is not None:
        message["context"] = {"from": state.config.display_phone_number, "id": str(context_id)}

    if kind == "text":
        if not isinstance(content, str) or not content.strip():
            return "text must be a non-empty string"
        message.update(type="text", text={"body": content})
    elif kind == "interactive":
        if not isinstance(content, dict):
            return "interactive must be an object"
        itype = content.get("type") or next(
            (k for k in ("button_reply", "list_reply") if k in content), None
        )
        reply = content.get(itype) if itype in ("button_reply", "list_reply") else None
        if not isinstance(reply, dict) or not reply.get("id") or not reply.get("title"):
            return "interactive needs button_reply or list_reply with id and title"
        message.update(type="interactive", interactive={"type": itype, itype: reply})
    elif kind == "button":
        if not isinstance(content, dict) or not content.get("text"):
            return "button needs text (and usually payload)"
        button = {"payload": content.get("payload", content["text"]), "text": content["text"]}
        message.update(type="button", button=button)
    elif kind == "location":
        if not isinstance(content, dict):
            return "location must be an object"
        try:
            lat, lon = float(content["latitude"]), float(content["longitude"])
        except (KeyError, TypeError, ValueError):
            return "location needs numeric latitude and longitude"
        location = {k: v for k, v in content.items() if k in ("name", "address", "url")}
        message.update(type="location", location={"latitude": lat, "longitude": lon, **location})
    elif kind == "unsupported":
        message.update(type="unsupported", errors=[_UNSUPPORTED_INBOUND_ERROR])
    else:
        if not isinstance(content, dict):
            return f"{kind} must be an object"
        media: dict[str, Any] = {
            "id": str(secrets.randbelow(9 * 10**15) + 10**15),
            "mime_type": _MEDIA_TYPES[kind],
            "sha256": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        if kind == "document":
            media["filename"] = "document.pdf"
        media.update({k: v for k, v in content.items() if isinstance(v, str | int | float)})
        message.update(type=kind, **{kind: media})
    return message


async def customer_send(request: web.Request) -> web.Response:
    """The customer writes: build, sign and deliver the inbound webhook, answer the hub's
    status (after retries)."""
    state = request.app[STATE]
    wa_id = _wa_id(request)
    data = await _json_object(request)
    customer = state.customer(wa_id)
    name = data.get("name")
    if isinstance(name, str) and name.strip():
        customer.name = name.strip()
    message = _inbound_message(state, customer, data)
    if isinstance(message, str):
        return _bad(message)
    now = state.now()
    customer.last_inbound_at = now
    record: dict[str, Any] = {
        "id": message["id"],
        "direction": "in",
        "type": message["type"],
        "status": "received",
        "received_at": _iso(now),
        "timestamp": message["timestamp"],
        "payload": message,
        "hub_status": None,
    }
    if message["type"] == "text":
        record["text"] = message["text"]["body"]
    state.remember(customer, record)
    payload = state.envelope(
        {
            "contacts": [{"profile": {"name": customer.name or wa_id}, "wa_id": wa_id}],
            "messages": [message],
        }
    )
    task = state.spawn(state.deliver("message", message["id"], payload))
    try:
        entries = await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
        return _bad("the stand-in was reset while delivering", status=409)
    record["hub_status"] = entries[0]["hub_status"]
    return web.json_response(
        {"id": message["id"], "hub_status": entries[0]["hub_status"], "ok": entries[0]["ok"]}
    )


async def customer_messages(request: web.Request) -> web.Response:
    state = request.app[STATE]
    wa_id = _wa_id(request)
    customer = state.customers.get(wa_id) or _Customer(wa_id=wa_id)
    return web.json_response(
        {
            "wa_id": wa_id,
            "name": customer.name,
            "window_open": state.window_open(customer),
            "messages": list(customer.messages),
        }
    )


async def customer_read(request: web.Request) -> web.Response:
    """The customer opens the chat: everything delivered becomes read."""
    state = request.app[STATE]
    customer = state.customers.get(_wa_id(request))
    records = [
        m
        for m in (customer.messages if customer else [])
        if m["direction"] == "out" and m["status"] == "delivered"
    ]
    now = state.now()
    for record in records:
        _advance(record, "read", now)
    if records:
        state.spawn(_read_flow(state, records))
    return web.json_response({"read": [m["id"] for m in records]})


async def customers_list(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {
            "customers": [
                {
                    "wa_id": c.wa_id,
                    "name": c.name,
                    "window_open": state.window_open(c),
                    "last_inbound_at": (
                        None if c.last_inbound_at is None else _iso(c.last_inbound_at)
                    ),
                }
                for c in state.customers.values()
            ]
        }
    )


def _faults_json(state: StandinState) -> web.Response:
    return web.json_response({"faults": [asdict(f) for f in state.faults]})


async def faults_get(request: web.Request) -> web.Response:
    return _faults_json(request.app[STATE])


async def faults_clear(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.faults.clear()
    return _faults_json(state)


async def faults_add(request: web.Request) -> web.Response:
    """Queue a fault for the next ``count`` sends (faults queue up in order)."""
    state = request.app[STATE]
    data = await _json_object(request)
    status, code = data.get("status"), data.get("code")
    timeout = data.get("timeout_seconds", 0)
    count = data.get("count", 1)
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        return _bad("status must be an HTTP error status (400-599)")
    if code is not None and not isinstance(code, int):
        return _bad("code must be an integer")
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or not 0 <= timeout <= MAX_HOLD_SECONDS
    ):
        return _bad(f"timeout_seconds must be between 0 and {MAX_HOLD_SECONDS:g}")
    if status is None and not timeout:
        return _bad("give status and/or timeout_seconds")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
        return _bad("count must be between 1 and 1000")
    state.faults.append(
        _Fault(status=status, code=code, timeout_seconds=float(timeout), remaining=count)
    )
    return _faults_json(state)


_BOOL_SETTINGS = ("duplicate_webhooks", "reverse_status_order", "auto_read", "bad_signature")


async def config_get(request: web.Request) -> web.Response:
    return web.json_response(asdict(request.app[STATE].settings))


async def config_set(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await _json_object(request)
    unknown = set(data) - {*_BOOL_SETTINGS, "status_delay_seconds", "webhook_url"}
    if unknown:
        return _bad(f"unknown settings: {', '.join(sorted(unknown))}")
    for key in _BOOL_SETTINGS:
        if key in data and not isinstance(data[key], bool):
            return _bad(f"{key} must be true or false")
    delay = data.get("status_delay_seconds", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 60:
        return _bad("status_delay_seconds must be between 0 and 60")
    url = data.get("webhook_url", "http://")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return _bad("webhook_url must be an http(s) URL")
    for key, value in data.items():
        setattr(state.settings, key, float(value) if key == "status_delay_seconds" else value)
    return web.json_response(asdict(state.settings))


def _clock_json(state: StandinState) -> web.Response:
    now = state.now()
    return web.json_response({"now": now, "iso": _iso(now), "offset_seconds": state.clock_offset})


async def clock_get(request: web.Request) -> web.Response:
    return _clock_json(request.app[STATE])


async def clock_set(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await _json_object(request)
    advance = data.get("advance_seconds")
    if isinstance(advance, bool) or not isinstance(advance, int | float):
        return _bad("advance_seconds must be a number")
    if not math.isfinite(advance):
        return _bad("advance_seconds must be finite")
    state.clock_offset += float(advance)
    return _clock_json(state)


async def verify(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await _json_object(request)
    token = data.get("verify_token")
    if token is not None and not isinstance(token, str):
        return _bad("verify_token must be a string")
    return web.json_response(await state.verify(token))


async def webhooks_log(request: web.Request) -> web.Response:
    state = request.app[STATE]
    rows = list(state.webhooks)
    kind = request.query.get("kind")
    if kind:
        rows = [r for r in rows if r["kind"] == kind]
    limit = request.query.get("limit", "")
    if limit.isdigit():
        rows = rows[-int(limit) :] if int(limit) else []
    return web.json_response({"webhooks": rows})


async def reset(request: web.Request) -> web.Response:
    await request.app[STATE].reset()
    return web.json_response({"ok": True})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE_HTML, content_type="text/html", charset="utf-8")


async def _session_ctx(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    state.session = ClientSession(timeout=ClientTimeout(total=state.config.webhook_timeout_seconds))
    try:
        yield
    finally:
        state.closing.set()
        await state.cancel_tasks()
        await state.session.close()
        state.session = None


async def _on_shutdown(app: web.Application) -> None:
    # Releases held requests before aiohttp waits for the handlers to finish.
    app[STATE].closing.set()


def standin_app(config: StandinConfig) -> web.Application:
    """Build the stand-in's aiohttp application (state lives in ``app[STATE]``)."""
    app = web.Application(client_max_size=1024**2)
    app[STATE] = StandinState(config)
    app.cleanup_ctx.append(_session_ctx)
    app.on_shutdown.append(_on_shutdown)
    app.add_routes(
        [
            web.post(r"/{version:v[0-9]+\.[0-9]+}/{phone_number_id}/messages", send_message),
            web.get("/healthz", healthz),
            web.get("/_standin/", page),
            web.get("/_standin", page),
            web.get("/_standin/customers", customers_list),
            web.get("/_standin/customers/{wa_id}/messages", customer_messages),
            web.post("/_standin/customers/{wa_id}/messages", customer_send),
            web.post("/_standin/customers/{wa_id}/read", customer_read),
            web.get("/_standin/faults", faults_get),
            web.post("/_standin/faults", faults_add),
            web.delete("/_standin/faults", faults_clear),
            web.get("/_standin/config", config_get),
            web.post("/_standin/config", config_set),
            web.get("/_standin/clock", clock_get),
            web.post("/_standin/clock", clock_set),
            web.post("/_standin/verify", verify),
            web.get("/_standin/webhooks", webhooks_log),
            web.post("/_standin/reset", reset),
        ]
    )
    return app


@dataclass(frozen=True)
class StandinServer:
    """A running stand-in: ``url`` is its base URL (the Cloud API base and the control API)."""

    url: str
    app: web.Application

    @property
    def state(self) -> StandinState:
        return self.app[STATE]


@contextlib.asynccontextmanager
async def run_standin(
    config: StandinConfig, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[StandinServer]:
    """Serve the stand-in on ``host:port`` (0 = a free port) for the ``async with`` block."""
    app = standin_app(config)
    async with app_served(app, host=host, port=port) as url:
        yield StandinServer(url=url, app=app)


# -- command line -------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m chat.channels.whatsapp_standin",
        description="Stand-in for the WhatsApp Cloud API (see docs/whatsapp-standin.md).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument(
        "--webhook-url",
        default=env("WHATSAPP_WEBHOOK_URL", "http://127.0.0.1:8000/channels/whatsapp/webhook"),
    )
    parser.add_argument("--app-secret", default=env("WHATSAPP_APP_SECRET"))
    parser.add_argument("--verify-token", default=env("WHATSAPP_VERIFY_TOKEN"))
    parser.add_argument("--access-token", default=env("WHATSAPP_ACCESS_TOKEN"))
    parser.add_argument("--phone-number-id", default=env("WHATSAPP_PHONE_NUMBER_ID", "100200300"))
    parser.add_argument("--api-version", default="v21.0")
    parser.add_argument("--status-delay", type=float, default=0.5, help="seconds per status")
    parser.add_argument("--auto-read", action="store_true")
    args = parser.parse_args(argv)
    missing = [
        f"--{name.replace('_', '-')} (or WHATSAPP_{name.upper()})"
        for name in ("app_secret", "verify_token", "access_token")
        if not getattr(args, name)
    ]
    if missing:
        parser.error("missing " + ", ".join(missing))
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m chat.channels.whatsapp_standin``."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = StandinConfig(
        webhook_url=args.webhook_url,
        app_secret=args.app_secret,
        verify_token=args.verify_token,
        access_token=args.access_token,
        phone_number_id=args.phone_number_id,
        api_version=args.api_version,
        status_delay_seconds=args.status_delay,
        auto_read=args.auto_read,
    )
    asyncio.run(
        serve_until_signalled(
            standin_app(config), host=args.host, port=args.port, name="whatsapp stand-in"
        )
    )
    return 0


PAGE_HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>WhatsApp stand-in: play the customer</title>
<style>
*{box-sizing:border-box}
body{font:14px system-ui,sans-serif;margin:0;background:#ece5dd;color:#111}
header{background:#075e54;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header small{opacity:.8}
main{display:grid;grid-template-columns:minmax(320px,2fr) minmax(260px,1fr);gap:12px;padding:12px}
section{background:#fff;border-radius:8px;padding:10px}
h2{font-size:15px;margin:10px 0 4px}
.row{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:6px 0}
#chat{height:52vh;overflow-y:auto;background:#efeae2;padding:8px;border-radius:6px}
.msg{max-width:78%;margin:6px 0;padding:6px 8px;border-radius:8px;white-space:pre-wrap;
  word-wrap:break-word}
.in{background:#dcf8c6;margin-left:auto}
.out{background:#fff;border:1px solid #ddd}
.meta{font-size:11px;color:#666;margin-top:2px}
.failed .meta,.bad{color:#b00020}
.open{color:#1b7f3b}
textarea{width:100%}
button{cursor:pointer}
ol{padding-left:20px;font-size:12px;max-height:30vh;overflow-y:auto}
</style>
</head>
<body>
<header><strong>WhatsApp stand-in</strong><small>play the customer</small>
<small id="clock"></small></header>
<main>
<section>
  <div class="row">
    <label>Phone <input id="wa" value="34600111222" size="14"></label>
    <label>Name <input id="name" value="Ana Pérez" size="14"></label>
    <span id="window"></span>
  </div>
  <div id="chat"></div>
  <form id="send-form" class="row">
    <textarea id="text" rows="2" placeholder="Write as the customer…"></textarea>
    <button type="submit">Send text</button>
  </form>
  <div class="row">
    Button reply: <input id="btn-id" value="b1" size="6">
    <input id="btn-title" value="Sí" size="10">
    <button id="send-button">Send reply</button>
    <button id="send-image">Send an image</button>
    <button id="mark-read">Mark all read</button>
  </div>
  <p id="note" class="meta"></p>
</section>
<section>
  <h2>Clock (24-hour rule)</h2>
  <div class="row">
    <button data-advance="3600">+1 h</button>
    <button data-advance="82800">+23 h</button>
    <button data-advance="90000">+25 h</button>
  </div>
  <h2>Faults for the next sends</h2>
  <div class="row">
    <button data-fault='{"status":503,"count":2}'>503 x2</button>
    <button data-fault='{"status":429,"count":1}'>429</button>
    <button data-fault='{"timeout_seconds":5,"count":1}'>hold 5 s</button>
    <button data-fault='{"status":400,"code":131026,"count":1}'>400 / 131026</button>
    <button id="clear-faults">clear</button>
  </div>
  <div id="faults" class="meta"></div>
  <h2>Behaviour</h2>
  <label><input type="checkbox" data-setting="duplicate_webhooks"> duplicate webhooks</label>
  <label><input type="checkbox" data-setting="reverse_status_order"> reverse status order</label>
  <label><input type="checkbox" data-setting="auto_read"> customer reads at once</label>
  <label><input type="checkbox" data-setting="bad_signature"> bad signature</label>
  <div class="row"><button id="verify">Verification handshake</button></div>
  <h2>Webhooks to the hub</h2>
  <ol id="hooks"></ol>
</section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let busy = false;

async function api(method, path, body) {
  const options = {method: method, headers: {}};
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
  return data;
}
function waId() { return $("wa").value.replace(/[^0-9]/g, ""); }
function note(text, bad) {
  $("note").textContent = text;
  $("note").className = bad ? "bad" : "meta";
}
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function customerSend(body) {
  if (!waId()) { note("Enter a phone number first.", true); return; }
  body.name = $("name").value;
  try {
    const r = await api("POST", "/_standin/customers/" + waId() + "/messages", body);
    note("Sent " + r.id + "; the hub answered " + r.hub_status, !r.ok);
  } catch (e) { note("Error: " + e.message, true); }
  refresh();
}

function describe(m) {
  if (m.type === "text") return m.text;
  if (m.type === "template") {
    const params = [];
    for (const c of m.template.components || []) {
      for (const p of c.parameters || []) if (p.text !== undefined) params.push(p.text);
    }
    return "[template " + m.template.name + "] " + params.join(", ");
  }
  const p = m.payload || {};
  if (m.type === "interactive" && m.direction === "in") {
    const i = p.interactive; const r = i[i.type];
    return "[" + i.type + "] " + r.title;
  }
  if (m.type === "interactive") return ((m.interactive.body || {}).text || "[interactive]");
  if (m.type === "button") return "[button] " + p.button.text;
  return "[" + m.type + "]" + ((p[m.type] || {}).caption ? " " + p[m.type].caption : "");
}

function replyButtons(m) {
  const box = el("div", "row");
  const action = (m.interactive && m.interactive.action) || {};
  for (const b of action.buttons || []) {
    const reply = b.reply || {};
    const button = el("button", "", reply.title);
    button.addEventListener("click", () => customerSend({
      interactive: {type: "button_reply", button_reply: {id: reply.id, title: reply.title}},
      context_id: m.id}));
    box.appendChild(button);
  }
  return box;
}

function render(data) {
  const chat = $("chat");
  const stick = chat.scrollTop + chat.clientHeight >= chat.scrollHeight - 20;
  chat.replaceChildren(...data.messages.map((m) => {
    const bubble = el("div", "msg " + m.direction + (m.status === "failed" ? " failed" : ""));
    bubble.appendChild(el("div", "", describe(m)));
    if (m.type === "interactive" && m.direction === "out") bubble.appendChild(replyButtons(m));
    let meta = m.received_at.replace("T", " ").slice(0, 19);
    if (m.direction === "out") meta += " · " + m.status;
    if (m.direction === "in") meta += " · hub " + m.hub_status;
    if (m.errors) meta += " · " + m.errors.map((e) => e.code + " " + e.title).join("; ");
    bubble.appendChild(el("div", "meta", meta));
    return bubble;
  }));
  if (stick) chat.scrollTop = chat.scrollHeight;
  $("window").textContent = data.window_open ? "24 h window open" : "24 h window closed";
  $("window").className = data.window_open ? "open" : "bad";
}

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const wa = waId();
    const [config, clock, faults, hooks] = await Promise.all([
      api("GET", "/_standin/config"), api("GET", "/_standin/clock"),
      api("GET", "/_standin/faults"), api("GET", "/_standin/webhooks?limit=15")]);
    if (wa) render(await api("GET", "/_standin/customers/" + wa + "/messages"));
    $("clock").textContent = "stand-in clock " + clock.iso.replace("T", " ").slice(0, 19) +
      " UTC (+" + Math.round(clock.offset_seconds / 3600) + " h)";
    for (const box of document.querySelectorAll("[data-setting]")) {
      box.checked = Boolean(config[box.dataset.setting]);
    }
    $("faults").textContent = faults.faults.length ? "pending: " + faults.faults.map(
      (f) => (f.status || "hold " + f.timeout_seconds + " s") + " x" + f.remaining).join(", ")
      : "no pending faults";
    $("hooks").replaceChildren(...hooks.webhooks.slice().reverse().map((h) => el(
      "li", h.ok ? "" : "bad",
      "#" + h.seq + " " + h.kind + " " + h.ref + (h.duplicate ? " (dup)" : "") + " → " +
      h.attempts.map((a) => a.status === null ? "error" : a.status).join(", "))));
  } catch (e) {
    note("Stand-in unreachable: " + e.message, true);
  } finally { busy = false; }
}

$("send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  customerSend({text: text});
});
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault(); $("send-form").requestSubmit();
  }
});
$("send-button").addEventListener("click", () => customerSend({interactive: {
  type: "button_reply", button_reply: {id: $("btn-id").value, title: $("btn-title").value}}}));
$("send-image").addEventListener("click", () => customerSend({image: {caption: "A photo"}}));
$("mark-read").addEventListener("click", async () => {
  try {
    const r = await api("POST", "/_standin/customers/" + waId() + "/read");
    note("Marked " + r.read.length + " message(s) read.");
  } catch (e) { note("Error: " + e.message, true); }
  refresh();
});
for (const button of document.querySelectorAll("[data-advance]")) {
  button.addEventListener("click", async () => {
    await api("POST", "/_standin/clock", {advance_seconds: Number(button.dataset.advance)});
    refresh();
  });
}
for (const button of document.querySelectorAll("[data-fault]")) {
  button.addEventListener("click", async () => {
    await api("POST", "/_standin/faults", JSON.parse(button.dataset.fault));
    refresh();
  });
}
$("clear-faults").addEventListener("click", async () => {
  await api("DELETE", "/_standin/faults"); refresh();
});
for (const box of document.querySelectorAll("[data-setting]")) {
  box.addEventListener("change", async () => {
    await api("POST", "/_standin/config", {[box.dataset.setting]: box.checked});
    refresh();
  });
}
$("verify").addEventListener("click", async () => {
  try {
    const r = await api("POST", "/_standin/verify");
    note("Handshake " + (r.ok ? "succeeded" : "failed") + " (hub answered " + r.status + ")",
      !r.ok);
  } catch (e) { note("Error: " + e.message, true); }
  refresh();
});
setInterval(refresh, 1000);
refresh();
</script>
</body>
</html>
"""


if __name__ == "__main__":
    raise SystemExit(main())
