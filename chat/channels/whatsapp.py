"""WhatsApp Cloud API channel adapter (infrastructure): webhook verification and parsing,
and sending through the provider's API with aiohttp.

The subset spoken is written down in docs/whatsapp-contract.md.  Inbound, every webhook is
checked against ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the app secret)
before its JSON is even parsed, then validated whole: a malformed one is refused (400)
before anything is written.  Outbound, ``send`` posts one message with a per-request
timeout and retries 5xx, 429, timeouts and connection errors a bounded number of times with
exponential backoff; any other 4xx is final.  The outbox (``chat.channels.outbox``) calls
``send`` after the message was committed.

Settings (environment, see hub/settings.py): ``WHATSAPP_API_BASE_URL``,
``WHATSAPP_API_VERSION``, ``WHATSAPP_PHONE_NUMBER_ID``, ``WHATSAPP_ACCESS_TOKEN``,
``WHATSAPP_APP_SECRET``, ``WHATSAPP_VERIFY_TOKEN``, ``WHATSAPP_TIMEOUT_SECONDS``,
``WHATSAPP_SEND_ATTEMPTS``, ``WHATSAPP_RETRY_BACKOFF_SECONDS``.  The channel is enabled
only when the phone number id, access token, app secret and verify token are all set.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
from django.conf import settings

from chat.channels.base import (
    ChannelAdapter,
    InboundMessage,
    OutboundItem,
    SendResult,
    StatusUpdate,
    WebhookBatch,
    WebhookRejected,
)
from hub.http import http_session

if TYPE_CHECKING:
    from collections.abc import Mapping

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
STATUSES = ("sent", "delivered", "read", "failed")


@dataclass(frozen=True)
class WhatsAppSettings:
    api_base_url: str
    api_version: str
    phone_number_id: str
    access_token: str
    app_secret: str
    verify_token: str
    timeout_seconds: float
    send_attempts: int
    retry_backoff_seconds: float

    @property
    def configured(self) -> bool:
        return all((self.phone_number_id, self.access_token, self.app_secret, self.verify_token))

    @property
    def messages_url(self) -> str:
        base = self.api_base_url.rstrip("/")
        return f"{base}/{self.api_version}/{self.phone_number_id}/messages"


def whatsapp_settings() -> WhatsAppSettings:
    """Read at each use, so a test's settings override takes effect."""
    return WhatsAppSettings(
        api_base_url=settings.WHATSAPP_API_BASE_URL,
        api_version=settings.WHATSAPP_API_VERSION,
        phone_number_id=settings.WHATSAPP_PHONE_NUMBER_ID,
        access_token=settings.WHATSAPP_ACCESS_TOKEN,
        app_secret=settings.WHATSAPP_APP_SECRET,
        verify_token=settings.WHATSAPP_VERIFY_TOKEN,
        timeout_seconds=settings.WHATSAPP_TIMEOUT_SECONDS,
        send_attempts=max(1, settings.WHATSAPP_SEND_ATTEMPTS),
        retry_backoff_seconds=settings.WHATSAPP_RETRY_BACKOFF_SECONDS,
    )


# --- webhook parsing ------------------------------------------------------------------


class _Shape:
    """Type checks that name the JSON path at fault (``entry[0].changes[0].value…``)."""

    @staticmethod
    def fail(path: str, problem: str) -> WebhookRejected:
        return WebhookRejected(400, f"{path}: {problem}", field=path)

    @classmethod
    def obj(cls, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise cls.fail(path, "expected an object")
        return value

    @classmethod
    def array(cls, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise cls.fail(path, "expected an array")
        return value

    @classmethod
    def string(cls, parent: dict[str, Any], key: str, path: str, *, required: bool = True) -> str:
        value = parent.get(key)
        if value is None:
            if required:
                raise cls.fail(f"{path}.{key}", "missing")
            return ""
        if not isinstance(value, str):
            raise cls.fail(f"{path}.{key}", "expected a string")
        if required and not value.strip():
            raise cls.fail(f"{path}.{key}", "must not be empty")
        return value

    @classmethod
    def number(cls, parent: dict[str, Any], key: str, path: str) -> float:
        value = parent.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise cls.fail(f"{path}.{key}", "expected a number")
        return float(value)

    @classmethod
    def timestamp(cls, parent: dict[str, Any], key: str, path: str) -> datetime:
        value = cls.string(parent, key, path)
        if not value.isdigit() or len(value) > 12:
            raise cls.fail(f"{path}.{key}", "expected Unix seconds as a string of digits")
        return datetime.fromtimestamp(int(value), tz=UTC)


def _limit(text: str) -> str:
    limit = settings.HUB_MESSAGE_MAX_CHARS
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _media_text(media_type: str, payload: dict[str, Any]) -> str:
    words = [f"[{media_type}]"]
    if payload.get("filename"):
        words.append(payload["filename"])
    if payload.get("caption"):
        words.append(payload["caption"])
    return " ".join(words)


def _inbound_message(
    raw: Any, path: str, names: dict[str, str], entry_point: str | None
) -> InboundMessage:
    """One element of ``value.messages`` as the chat services take it."""
    S = _Shape
    message = S.obj(raw, path)
    sender = S.string(message, "from", path)
    message_id = S.string(message, "id", path)
    S.timestamp(message, "timestamp", path)
    kind_of = S.string(message, "type", path)
    kind, payload, text = "text", {}, ""
    if kind_of == "text":
        body = S.obj(message.get("text"), f"{path}.text")
        text = S.string(body, "body", f"{path}.text")
    elif kind_of == "interactive":
        where = f"{path}.interactive"
        interactive = S.obj(message.get("interactive"), where)
        reply_type = S.string(interactive, "type", where)
        if reply_type not in ("button_reply", "list_reply"):
            raise S.fail(f"{where}.type", "expected button_reply or list_reply")
        reply = S.obj(interactive.get(reply_type), f"{where}.{reply_type}")
        kind = "interactive"
        payload = {
            "type": reply_type,
            "reply_id": S.string(reply, "id", f"{where}.{reply_type}"),
            "title": S.string(reply, "title", f"{where}.{reply_type}"),
        }
        description = S.string(reply, "description", f"{where}.{reply_type}", required=False)
        if description:
            payload["description"] = description
        text = payload["title"]
    elif kind_of == "button":
        button = S.obj(message.get("button"), f"{path}.button")
        kind = "interactive"
        payload = {
            "type": "button",
            "reply_id": S.string(button, "payload", f"{path}.button", required=False),
            "title": S.string(button, "text", f"{path}.button"),
        }
        text = payload["title"]
    elif kind_of in MEDIA_TYPES:
        where = f"{path}.{kind_of}"
        media = S.obj(message.get(kind_of), where)
        kind = "media"
        payload = {"media_type": kind_of, "id": S.string(media, "id", where)}
        for key in ("mime_type", "sha256", "caption", "filename"):
            value = S.string(media, key, where, required=False)
            if value:
                payload[key] = value
        text = _media_text(kind_of, payload)
    elif kind_of == "location":
        where = f"{path}.location"
        location = S.obj(message.get("location"), where)
        latitude = S.number(location, "latitude", where)
        longitude = S.number(location, "longitude", where)
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise S.fail(where, "latitude or longitude out of range")
        kind = "location"
        payload = {"latitude": latitude, "longitude": longitude}
        for key in ("name", "address"):
            value = S.string(location, key, where, required=False)
            if value:
                payload[key] = value
        label = payload.get("name") or payload.get("address") or ""
        text = f"[location] {label} ({latitude:.5f}, {longitude:.5f})".replace("  ", " ")
    else:
        # "unsupported", reactions, contacts…: kept as a readable line so the operator
        # knows the customer sent something, with the provider's explanation.
        errors = message.get("errors")
        payload = {"unsupported": kind_of}
        if isinstance(errors, list):
            payload["errors"] = [e for e in errors if isinstance(e, dict)][:5]
        text = f"[unsupported message: {kind_of}]"
    return InboundMessage(
        external_id=sender,
        channel_message_id=message_id,
        text=_limit(text.strip()),
        kind=kind,
        payload=payload,
        display_name=names.get(sender, "")[:200],
        entry_point=entry_point,
    )


def _status_update(raw: Any, path: str) -> StatusUpdate | None:
    S = _Shape
    status = S.obj(raw, path)
    message_id = S.string(status, "id", path)
    value = S.string(status, "status", path)
    at = S.timestamp(status, "timestamp", path)
    if value not in STATUSES:
        return None  # e.g. "deleted", "warning": nothing the hub tracks
    code, text = "", ""
    errors = status.get("errors")
    if errors is not None:
        first = S.obj(S.array(errors, f"{path}.errors")[0] if errors else {}, f"{path}.errors[0]")
        if first:
            raw_code = first.get("code")
            if isinstance(raw_code, bool) or not isinstance(raw_code, int | str):
                raise S.fail(f"{path}.errors[0].code", "expected a number")
            code = str(raw_code)
            details = first.get("error_data", {})
            details = details.get("details", "") if isinstance(details, dict) else ""
            title = first.get("title") or first.get("message") or ""
            text = " — ".join(str(part) for part in (title, details) if part)
    if value == "failed" and not code:
        code, text = "unknown", "The provider reported a failure without details."
    return StatusUpdate(
        provider_message_id=message_id,
        status=value,
        at=at,
        error_code=code[:64],
        error_text=text[:2000],
    )


def webhook_body_parse(body: bytes) -> WebhookBatch:
    """Validate a whole webhook body and normalise it; WebhookRejected(400) names the
    first problem, and nothing has been written."""
    S = _Shape
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(
            400, f"The body is not valid JSON: {exc}", code="invalid_json"
        ) from None
    data = S.obj(data, "body")
    if data.get("object") != "whatsapp_business_account":
        raise S.fail("object", "expected 'whatsapp_business_account'")
    messages: list[InboundMessage] = []
    statuses: list[StatusUpdate] = []
    ignored: list[str] = []
    for i, entry in enumerate(S.array(data.get("entry"), "entry")):
        entry_path = f"entry[{i}]"
        entry = S.obj(entry, entry_path)
        for j, change in enumerate(S.array(entry.get("changes"), f"{entry_path}.changes")):
            path = f"{entry_path}.changes[{j}]"
            change = S.obj(change, path)
            field = S.string(change, "field", path)
            if field != "messages":
                ignored.append(f"{path}: field {field!r}")
                continue
            value = S.obj(change.get("value"), f"{path}.value")
            path = f"{path}.value"
            metadata = value.get("metadata")
            entry_point = None
            if metadata is not None:
                metadata = S.obj(metadata, f"{path}.metadata")
                entry_point = (
                    S.string(metadata, "display_phone_number", f"{path}.metadata", required=False)
                    or None
                )
            names: dict[str, str] = {}
            for k, contact in enumerate(S.array(value.get("contacts", []), f"{path}.contacts")):
                contact = S.obj(contact, f"{path}.contacts[{k}]")
                wa_id = S.string(contact, "wa_id", f"{path}.contacts[{k}]", required=False)
                profile = contact.get("profile")
                if wa_id and isinstance(profile, dict) and isinstance(profile.get("name"), str):
                    names[wa_id] = profile["name"]
            for k, raw in enumerate(S.array(value.get("messages", []), f"{path}.messages")):
                messages.append(_inbound_message(raw, f"{path}.messages[{k}]", names, entry_point))
            for k, raw in enumerate(S.array(value.get("statuses", []), f"{path}.statuses")):
                update = _status_update(raw, f"{path}.statuses[{k}]")
                if update is None:
                    ignored.append(f"{path}.statuses[{k}]: status {raw.get('status')!r}")
                else:
                    statuses.append(update)
    return WebhookBatch(messages=tuple(messages), statuses=tuple(statuses), ignored=tuple(ignored))


def signature_check(*, app_secret: str, header: str | None, body: bytes) -> None:
    """Raise WebhookRejected unless ``header`` is the HMAC-SHA256 of the raw ``body``
    (401 when it is missing, 403 when it is wrong), compared in constant time."""
    if not header:
        raise WebhookRejected(401, f"The {SIGNATURE_HEADER} header is missing.")
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        raise WebhookRejected(403, f"The {SIGNATURE_HEADER} header is not sha256=<64 hex>.")
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match.group(1).lower()):
        raise WebhookRejected(403, f"The {SIGNATURE_HEADER} signature does not match the body.")


# --- sending ----------------------------------------------------------------------------


def request_body(item: OutboundItem) -> dict[str, Any]:
    """The Cloud API body for one outbound message (text or template)."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": item.to,
    }
    if item.kind == "template":
        language = item.payload.get("language")
        template: dict[str, Any] = {
            "name": item.payload.get("name"),
            "language": language if isinstance(language, dict) else {"code": language},
        }
        if item.payload.get("components"):
            template["components"] = item.payload["components"]
        body.update(type="template", template=template)
    else:
        body.update(type="text", text={"body": item.text, "preview_url": False})
    return body


def _provider_error(status: int, data: Any) -> tuple[str, str]:
    """(code, text) of a Cloud API error answer; HTTP status when the body says nothing."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return f"http_{status}", f"The provider answered HTTP {status}."
    code = error.get("code")
    details = error.get("error_data")
    details = details.get("details") if isinstance(details, dict) else None
    message = error.get("message") or f"HTTP {status}"
    text = f"{message} — {details}" if details and details != message else str(message)
    return (str(code) if code is not None else f"http_{status}"), text[:2000]


class WhatsAppAdapter(ChannelAdapter):
    channel: ClassVar[str] = "whatsapp"
    label: ClassVar[str] = "WhatsApp"
    reply_window: ClassVar[timedelta | None] = timedelta(hours=24)
    uses_outbox: ClassVar[bool] = True
    outbound_kinds: ClassVar[frozenset[str]] = frozenset({"text", "template"})

    def enabled(self) -> bool:
        return whatsapp_settings().configured

    # --- inbound ---------------------------------------------------------------------
    def webhook_handshake(self, params: Mapping[str, str]) -> str:
        config = whatsapp_settings()
        mode = params.get("hub.mode", "")
        token = params.get("hub.verify_token", "")
        challenge = params.get("hub.challenge", "")
        if mode != "subscribe":
            raise WebhookRejected(403, "hub.mode must be 'subscribe'.", field="hub.mode")
        if not hmac.compare_digest(token.encode(), config.verify_token.encode()):
            raise WebhookRejected(403, "hub.verify_token is wrong.", field="hub.verify_token")
        if not challenge:
            raise WebhookRejected(400, "hub.challenge is missing.", field="hub.challenge")
        return challenge

    def webhook_verify(self, headers: Mapping[str, str], body: bytes) -> None:
        signature_check(
            app_secret=whatsapp_settings().app_secret,
            header=headers.get(SIGNATURE_HEADER),
            body=body,
        )

    def webhook_parse(self, body: bytes) -> WebhookBatch:
        return webhook_body_parse(body)

    # --- outbound --------------------------------------------------------------------
    def send_timeout_seconds(self) -> float:
        config = whatsapp_settings()
        backoff = sum(config.retry_backoff_seconds * 2**i for i in range(config.send_attempts - 1))
        return config.timeout_seconds * config.send_attempts + backoff

    async def send(self, item: OutboundItem) -> SendResult:
        """POST the message; retry 5xx/429/timeouts/connection errors up to
        ``WHATSAPP_SEND_ATTEMPTS`` times in all, backing off exponentially."""
        config = whatsapp_settings()
        if not config.configured:
            return SendResult(
                error_code="not_configured",
                error_text="The WhatsApp channel is not configured on this hub.",
                retryable=True,
            )
        headers = {"Authorization": f"Bearer {config.access_token}"}
        body = request_body(item)
        timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)
        result = SendResult(error_code="not_sent", error_text="Not sent.", retryable=True)
        for attempt in range(1, config.send_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(config.retry_backoff_seconds * 2 ** (attempt - 2))
            try:
                async with http_session().post(
                    config.messages_url, json=body, headers=headers, timeout=timeout
                ) as response:
                    raw = await response.read()
                    status = response.status
            except TimeoutError:
                result = SendResult(
                    error_code="timeout",
                    error_text=f"No answer within {config.timeout_seconds:g} s.",
                    retryable=True,
                )
                logger.warning("whatsapp send of message %s: timeout", item.message_id)
                continue
            except aiohttp.ClientError as exc:
                result = SendResult(
                    error_code="connection_error",
                    error_text=f"{type(exc).__name__}: {exc}"[:2000],
                    retryable=True,
                )
                logger.warning("whatsapp send of message %s: %s", item.message_id, exc)
                continue
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = None
            if status == 200:
                try:
                    wamid = data["messages"][0]["id"]
                except (TypeError, KeyError, IndexError):
                    wamid = None
                if isinstance(wamid, str) and wamid:
                    return SendResult(provider_message_id=wamid)
                return SendResult(
                    error_code="bad_answer",
                    error_text="The provider accepted the message without a message id.",
                    retryable=False,
                )
            code, text = _provider_error(status, data)
            retryable = status == 429 or status >= 500
            result = SendResult(error_code=code, error_text=text, retryable=retryable)
            logger.warning(
                "whatsapp send of message %s: HTTP %s code %s (%s)",
                item.message_id,
                status,
                code,
                "retrying" if retryable else "final",
            )
            if not retryable:
                return result
        return result
