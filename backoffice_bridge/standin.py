"""Back-office stand-in: an external system, not a hub layer.

A small aiohttp application that plays the bank's back office (the "FintechOS portal" of
seed 000 and the payment operations of seed 002) for the hub's ``backoffice_bridge``
client: bank users with statuses (new, active, locked, suspended) and transfer limits,
block and unblock, temporary limits under the bank's maximum, password resets, payment
inquiry and claim cases, and the on-behalf operations of seed 001 (transaction disputes,
stopped cheques).  Every write needs an ``Idempotency-Key``: a repeated key
answers what the first request answered and never acts twice.  A control API under
``/_standin/`` injects failures (5xx N times, hung requests, 4xx with a reason), lists the
calls it received and resets the state (docs/backoffice.md).

It imports neither Django nor any hub module on purpose: it is somebody else's system, and
it must run on its own::

    python -m backoffice_bridge.standin --port 8082 --token TOKEN
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
import logging
import math
import os
import time
import unicodedata
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from hub.standin_server import app_served, serve_until_signalled

log = logging.getLogger(__name__)

#: Upper bound of an injected hang, so a typo cannot hang a test run.
MAX_HOLD_SECONDS = 120.0
CALL_LOG_LIMIT = 1000
IDEMPOTENCY_LIMIT = 10_000
SEARCH_LIMIT = 20
STATUSES = ("new", "active", "locked", "suspended")
LIMIT_FIELDS = ("daily_transfer", "single_transfer")
#: The columns a search can target (seed 000's "Search Users" grid).
SEARCH_FIELDS = (
    "user_name",
    "first_name",
    "last_name",
    "mobile",
    "email",
    "personal_id",
    "core_banking_id",
    "system_user_id",
)
CASE_KINDS = ("inquiry", "claim")
#: The most cheques one stop covers at the back office (the hub's own limit is lower).
CHEQUE_SERIES_LIMIT = 100

DEMO_USERS: tuple[dict[str, Any], ...] = (
    {
        "id": "U1001",
        "user_name": "ana.garcia",
        "first_name": "Ana",
        "last_name": "García",
        "mobile": "+34600111222",
        "email": "ana.garcia@example.com",
        "personal_id": "12345678Z",
        "core_banking_id": "CB-0001001",
        "system_user_id": "SYS-501",
        "status": "active",
    },
    {
        "id": "U1002",
        "user_name": "bruno.silva",
        "first_name": "Bruno",
        "last_name": "Silva",
        "mobile": "+351912345678",
        "email": "bruno.silva@example.com",
        "personal_id": "98765432X",
        "core_banking_id": "CB-0001002",
        "system_user_id": "SYS-502",
        "status": "active",
    },
    {
        "id": "U1003",
        "user_name": "chloe.martin",
        "first_name": "Chloé",
        "last_name": "Martin",
        "mobile": "+33612345678",
        "email": "chloe.martin@example.com",
        "personal_id": "1800675123456",
        "core_banking_id": "CB-0001003",
        "system_user_id": "SYS-503",
        "status": "locked",
    },
    {
        "id": "U1004",
        "user_name": "dieter.krause",
        "first_name": "Dieter",
        "last_name": "Krause",
        "mobile": "+491701234567",
        "email": "dieter.krause@example.com",
        "personal_id": "T22000129",
        "core_banking_id": "CB-0001004",
        "system_user_id": "SYS-504",
        "status": "suspended",
    },
    {
        "id": "U1005",
        "user_name": "eva.novak",
        "first_name": "Eva",
        "last_name": "Novak",
        "mobile": "+420601234567",
        "email": "eva.novak@example.com",
        "personal_id": "8551011234",
        "core_banking_id": "CB-0001005",
        "system_user_id": "SYS-505",
        "status": "new",
    },
)


@dataclass(frozen=True)
class StandinConfig:
    """How one stand-in is built.  ``token`` must match the hub's BACKOFFICE_TOKEN."""

    token: str
    #: The bank's maximum for each limit (a temporary limit above it is refused, 422).
    max_daily_transfer: int = 50_000
    max_single_transfer: int = 20_000
    default_daily_transfer: int = 5_000
    default_single_transfer: int = 2_000
    seed_demo_users: bool = True
    clock: Callable[[], float] = time.time


@dataclass
class _Fault:
    """An injected failure for the next ``remaining`` matching API requests.

    ``status`` 5xx or 4xx (with ``reason``) and/or ``timeout_seconds`` (the request hangs
    that long first).  ``after_action``: the write is performed and remembered under its
    idempotency key, then the failure is answered — a lost answer, which a retry with the
    same key must not turn into a second action.
    """

    status: int | None
    reason: str
    timeout_seconds: float
    remaining: int
    path: str = ""
    method: str = ""
    after_action: bool = False


@dataclass
class _Stored:
    """The first answer to an idempotency key."""

    fingerprint: str
    status: int
    body: dict[str, Any]


@dataclass
class _State:
    config: StandinConfig
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    resets: list[dict[str, Any]] = field(default_factory=list)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (user id, cheque number) -> the stop that covers it
    stopped_cheques: dict[tuple[str, int], str] = field(default_factory=dict)
    stop_seq: int = 0
    answers: dict[str, _Stored] = field(default_factory=dict)
    faults: deque[_Fault] = field(default_factory=deque)
    calls: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=CALL_LOG_LIMIT))
    maximum: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    case_seq: int = 0
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    def forget(self) -> None:
        c = self.config
        self.users = {}
        self.cases = {}
        self.resets = []
        self.disputes = {}
        self.stopped_cheques = {}
        self.stop_seq = 0
        self.answers = {}
        self.faults.clear()
        self.calls.clear()
        self.seq = 0
        self.case_seq = 0
        self.maximum = {
            "daily_transfer": c.max_daily_transfer,
            "single_transfer": c.max_single_transfer,
        }
        if c.seed_demo_users:
            for user in DEMO_USERS:
                self.add_user(dict(user))

    def now(self) -> float:
        return self.config.clock()

    def add_user(self, data: dict[str, Any]) -> dict[str, Any]:
        c = self.config
        user = {
            "id": data["id"],
            **{name: str(data.get(name, "")) for name in SEARCH_FIELDS},
            "status": data.get("status", "active"),
            "limits": {
                "daily_transfer": c.default_daily_transfer,
                "single_transfer": c.default_single_transfer,
            },
            "temporary_limits": None,
            "password_resets": 0,
            "updated_at": _iso(self.now()),
        }
        self.users[user["id"]] = user
        return user

    def take_fault(self, request: web.Request) -> _Fault | None:
        for fault in self.faults:
            if fault.method and fault.method != request.method:
                continue
            if fault.path and fault.path not in request.path:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
            return fault
        return None

    async def hold(self, seconds: float) -> bool:
        """Sleep like a hung back office; False if the stand-in is shutting down."""
        try:
            await asyncio.wait_for(self.closing.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False


STATE = web.AppKey("backoffice_standin_state", _State)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


class _Refusal(Exception):
    """A business refusal: answered as ``{"error": {"code", "reason"}}`` (and remembered
    under the idempotency key like any other answer)."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


def _error(status: int, code: str, reason: str) -> web.Response:
    return web.json_response({"error": {"code": code, "reason": reason}}, status=status)


def _bearer_ok(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


async def _json_object(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _Refusal(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _Refusal(400, "invalid_json", "the body must be a JSON object")
    return data


def _log_call(state: _State, request: web.Request, **extra: Any) -> dict[str, Any]:
    state.seq += 1
    row = {
        "seq": state.seq,
        "at": _iso(state.now()),
        "method": request.method,
        "path": request.path,
        "idempotency_key": request.headers.get("Idempotency-Key"),
        **extra,
    }
    state.calls.append(row)
    return row


# -- the API (hub -> stand-in) ------------------------------------------------------------

Handler = Callable[[_State, web.Request, dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]]


def _api(handler: Handler, *, write: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap an API handler with auth, faults, idempotency and the call log."""

    async def endpoint(request: web.Request) -> web.Response:
        state = request.app[STATE]
        row = _log_call(state, request, status=None, acted=False, replayed=False, fault=None)
        if not _bearer_ok(request, state.config.token):
            row["status"] = 401
            return _error(401, "unauthorized", "a valid bearer token is required")
        key = request.headers.get("Idempotency-Key", "").strip()
        if write and not key:
            row["status"] = 400
            return _error(400, "idempotency_key_required", "every write needs an Idempotency-Key")
        if write and len(key) > 200:
            row["status"] = 400
            return _error(400, "invalid_idempotency_key", "the Idempotency-Key is too long")
        try:
            body = await _json_object(request) if write else {}
        except _Refusal as refusal:
            row["status"] = refusal.status
            return _error(refusal.status, refusal.code, refusal.reason)
        fingerprint = hashlib.sha256(
            f"{request.method} {request.path} {json.dumps(body, sort_keys=True)}".encode()
        ).hexdigest()

        fault = state.take_fault(request)
        if fault is not None:
            row["fault"] = asdict(fault) | {"remaining": None}
        if fault is not None and not fault.after_action:
            if fault.timeout_seconds and not await state.hold(fault.timeout_seconds):
                raise web.HTTPServiceUnavailable()
            if fault.status is not None:
                row["status"] = fault.status
                return _error(fault.status, _fault_code(fault.status), fault.reason)

        # Checked after any hang: a retry may have acted meanwhile.  Nothing awaits between
        # this check and storing the answer, so a key acts at most once.
        headers: dict[str, str] = {}
        stored = state.answers.get(key) if write else None
        if stored is not None:
            if stored.fingerprint != fingerprint:
                row["status"] = 422
                return _error(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                )
            status, answer = stored.status, stored.body
            row["replayed"] = True
            headers["Idempotent-Replayed"] = "true"
        else:
            try:
                status, answer = await handler(state, request, body)
            except _Refusal as refusal:
                status = refusal.status
                answer = {"error": {"code": refusal.code, "reason": refusal.reason}}
            else:
                row["acted"] = write
            if write:
                if len(state.answers) >= IDEMPOTENCY_LIMIT:
                    state.answers.pop(next(iter(state.answers)))
                state.answers[key] = _Stored(fingerprint, status, answer)

        if fault is not None and fault.after_action:  # the answer is lost on its way
            if fault.timeout_seconds and not await state.hold(fault.timeout_seconds):
                raise web.HTTPServiceUnavailable()
            if fault.status is not None:
                row["status"] = fault.status
                return _error(fault.status, _fault_code(fault.status), fault.reason)
        row["status"] = status
        return web.json_response(answer, status=status, headers=headers)

    return endpoint


def _fault_code(status: int) -> str:
    if status >= 500:
        return "unavailable"
    return {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}.get(
        status, "refused"
    )


def _user(state: _State, request: web.Request) -> dict[str, Any]:
    user = state.users.get(request.match_info["user_id"])
    if user is None:
        raise _Refusal(404, "user_not_found", "no bank user with this id")
    return user


def _fold(value: str) -> str:
    """Case, accents and spaces ignored: "Garcia" finds "García"."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and ch != " ")


def _matches(user: dict[str, Any], fields: tuple[str, ...], query: str) -> bool:
    wanted = _fold(query)
    for name in fields:
        value = _fold(user[name])
        if name == "mobile":
            digits = "".join(ch for ch in query if ch.isdigit())
            if len(digits) >= 6 and digits in "".join(ch for ch in value if ch.isdigit()):
                return True
            continue
        if name in ("first_name", "last_name", "user_name", "email"):
            if wanted in value:
                return True
        elif wanted == value:  # identifiers match exactly
            return True
    return False


async def users_search(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """``GET /api/v1/users?q=…[&field=…]``: every column, or the one named."""
    query = request.query.get("q", "").strip()
    column = request.query.get("field", "").strip()
    if len(query) < 2:
        raise _Refusal(400, "invalid_query", "q must have at least 2 characters")
    if column and column not in SEARCH_FIELDS:
        raise _Refusal(400, "invalid_field", f"field must be one of: {', '.join(SEARCH_FIELDS)}")
    fields = (column,) if column else SEARCH_FIELDS
    found = [copy.deepcopy(u) for u in state.users.values() if _matches(u, fields, query)]
    return 200, {"users": found[:SEARCH_LIMIT], "truncated": len(found) > SEARCH_LIMIT}


async def user_get(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    return 200, {"user": copy.deepcopy(_user(state, request))}


async def user_block(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Inactivate (seed 000): an active or locked user becomes suspended."""
    user = _user(state, request)
    if user["status"] == "suspended":
        raise _Refusal(409, "invalid_status", "the user is already suspended")
    if user["status"] == "new":
        raise _Refusal(409, "invalid_status", "the user is new and cannot be inactivated yet")
    user["status"] = "suspended"
    user["updated_at"] = _iso(state.now())
    return 200, {"user": copy.deepcopy(user)}


async def user_unblock(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Reactivate: a suspended or locked user becomes active."""
    user = _user(state, request)
    if user["status"] == "active":
        raise _Refusal(409, "invalid_status", "the user is already active")
    if user["status"] == "new":
        raise _Refusal(409, "invalid_status", "the user is new: activation is not done here")
    user["status"] = "active"
    user["updated_at"] = _iso(state.now())
    return 200, {"user": copy.deepcopy(user)}


def _limit(body: dict[str, Any], name: str, maximum: int) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Refusal(400, "invalid_limit", f"{name} must be an integer")
    if value < 0:
        raise _Refusal(422, "negative_limit", f"{name} may not be negative")
    if value > maximum:
        raise _Refusal(
            422, "limit_above_maximum", f"{name} {value} is above the bank's maximum of {maximum}"
        )
    return value


async def limits_temporary_set(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Temporary limits until ``expires_at`` (the caller reverts them; nothing here does)."""
    user = _user(state, request)
    if user["status"] != "active":
        raise _Refusal(409, "invalid_status", f"the user is {user['status']}")
    limits = {name: _limit(body, name, state.maximum[name]) for name in LIMIT_FIELDS}
    hours = body.get("hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 72:
        raise _Refusal(400, "invalid_hours", "hours must be an integer from 1 to 72")
    user["temporary_limits"] = {**limits, "expires_at": _iso(state.now() + hours * 3600)}
    user["updated_at"] = _iso(state.now())
    return 200, {"user": copy.deepcopy(user)}


async def limits_temporary_revert(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Back to the standing limits (also when there was nothing to revert)."""
    user = _user(state, request)
    reverted = user["temporary_limits"]
    user["temporary_limits"] = None
    user["updated_at"] = _iso(state.now())
    return 200, {"user": copy.deepcopy(user), "reverted": reverted}


async def password_reset(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    user = _user(state, request)
    if user["status"] in ("suspended", "new"):
        raise _Refusal(409, "invalid_status", f"the user is {user['status']}")
    user["password_resets"] += 1
    reset = {
        "id": f"PR{len(state.resets) + 1:05d}",
        "user_id": user["id"],
        "delivery": "sms",
        "expires_at": _iso(state.now() + 3600),
        "instructions": (
            "A one-time code was sent by SMS to the mobile number on file; open the banking "
            "app, choose 'Forgot password' and enter it within one hour."
        ),
    }
    state.resets.append(reset)
    return 200, {"reset": reset, "user": copy.deepcopy(user)}


def _require_active(user: dict[str, Any]) -> None:
    if user["status"] != "active":
        raise _Refusal(409, "invalid_status", f"the user is {user['status']}")


async def dispute_open(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """A transaction dispute on the user's behalf (seed 001); one per transaction."""
    user = _user(state, request)
    _require_active(user)
    transaction_id = body.get("transaction_id")
    if not isinstance(transaction_id, str) or not transaction_id.strip():
        raise _Refusal(400, "invalid_transaction", "transaction_id is required")
    try:
        amount = float(body.get("amount"))  # a string like "12.50"
    except (TypeError, ValueError):
        raise _Refusal(400, "invalid_amount", "amount must be a decimal string") from None
    if not math.isfinite(amount) or amount <= 0:
        raise _Refusal(422, "invalid_amount", "amount must be above zero")
    if any(
        d["user_id"] == user["id"] and d["transaction_id"] == transaction_id
        for d in state.disputes.values()
    ):
        raise _Refusal(409, "already_disputed", "this transaction is already disputed")
    dispute = {
        "id": f"DSP{len(state.disputes) + 1:06d}",
        "user_id": user["id"],
        "transaction_id": transaction_id,
        "amount": str(body.get("amount")),
        "reason": str(body.get("reason", "")),
        "details": str(body.get("details", "")),
        "state": "open",
        "opened_at": _iso(state.now()),
    }
    state.disputes[dispute["id"]] = dispute
    return 201, {"dispute": copy.deepcopy(dispute)}


def _cheque(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, str) or not value.isdigit() or len(value) > 12:
        raise _Refusal(400, "invalid_cheque_number", f"{name} must be 1 to 12 digits")
    return int(value)


async def cheques_stop(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Stop one cheque (``first`` = ``last``) or a series; a cheque stopped already is a 409."""
    user = _user(state, request)
    _require_active(user)
    first = _cheque(body, "first")
    last = _cheque(body, "last") if "last" in body else first
    if last < first:
        raise _Refusal(422, "invalid_series", "last comes before first")
    if last - first + 1 > CHEQUE_SERIES_LIMIT:
        raise _Refusal(
            422, "series_too_long", f"a stop covers at most {CHEQUE_SERIES_LIMIT} cheques"
        )
    numbers = range(first, last + 1)
    taken = [n for n in numbers if (user["id"], n) in state.stopped_cheques]
    if taken:
        raise _Refusal(409, "already_stopped", f"cheque {taken[0]} is already stopped")
    state.stop_seq += 1
    stop = {
        "id": f"STP{state.stop_seq:06d}",
        "user_id": user["id"],
        "first": body["first"],
        "last": body.get("last", body["first"]),
        "count": len(numbers),
        "reason": str(body.get("reason", "")),
        "stopped_at": _iso(state.now()),
    }
    for n in numbers:
        state.stopped_cheques[(user["id"], n)] = stop["id"]
    return 200, {"stop": stop}


async def case_open(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """A payment inquiry or claim case (seed 002); its tasks are the back office's."""
    kind = body.get("kind")
    if kind not in CASE_KINDS:
        raise _Refusal(400, "invalid_kind", f"kind must be one of: {', '.join(CASE_KINDS)}")
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or user_id not in state.users:
        raise _Refusal(404, "user_not_found", "no bank user with this id")
    subject = body.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise _Refusal(400, "invalid_subject", "subject is required")
    state.case_seq += 1
    case = {
        "id": f"{'INQ' if kind == 'inquiry' else 'CLM'}{state.case_seq:06d}",
        "kind": kind,
        "user_id": user_id,
        "subject": subject.strip(),
        "details": body.get("details") if isinstance(body.get("details"), dict) else {},
        "state": "open",
        "opened_at": _iso(state.now()),
        "updated_at": _iso(state.now()),
    }
    state.cases[case["id"]] = case
    return 201, {"case": copy.deepcopy(case)}


async def case_get(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    case = state.cases.get(request.match_info["case_id"])
    if case is None:
        raise _Refusal(404, "case_not_found", "no case with this id")
    return 200, {"case": copy.deepcopy(case)}


#: Where a case may go, by kind and current state (seed 002's playbook at the bank): an
#: inquiry is answered; a claim's debit is approved and then the claim credited, or the
#: debit is rejected and the claim declined in one step.
CASE_TRANSITIONS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("inquiry", "open"): {"resolved": ("answered",)},
    ("claim", "open"): {"debit_approved": ("",), "resolved": ("declined",)},
    ("claim", "debit_approved"): {"resolved": ("credited",)},
}


async def case_state(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """``POST /api/v1/cases/{id}/state`` ``{state, resolution?}``: move a case along
    ``CASE_TRANSITIONS``; anything else is 409 ``invalid_transition``."""
    case = state.cases.get(request.match_info["case_id"])
    if case is None:
        raise _Refusal(404, "case_not_found", "no case with this id")
    target = body.get("state")
    resolution = body.get("resolution") or ""
    if not isinstance(target, str) or not isinstance(resolution, str):
        raise _Refusal(400, "invalid_state", "state (and resolution) must be strings")
    allowed = CASE_TRANSITIONS.get((case["kind"], case["state"]), {})
    if target not in allowed or resolution not in allowed[target]:
        raise _Refusal(
            409,
            "invalid_transition",
            f"a {case['kind']} case in state {case['state']} cannot go to {target}"
            + (f" ({resolution})" if resolution else ""),
        )
    case["state"] = target
    if resolution:
        case["resolution"] = resolution
    case["updated_at"] = _iso(state.now())
    case.setdefault("history", []).append(
        {"state": target, "resolution": resolution, "at": case["updated_at"]}
    )
    return 200, {"case": copy.deepcopy(case)}


async def maximum_get(
    state: _State, request: web.Request, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    return 200, {"maximum": dict(state.maximum)}


# -- the control API (tests and demos) ----------------------------------------------------


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _control_body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        return await _json_object(request)
    except _Refusal as refusal:
        return _bad(refusal.reason)


def _faults_json(state: _State) -> web.Response:
    return web.json_response({"faults": [asdict(f) for f in state.faults]})


async def faults_get(request: web.Request) -> web.Response:
    return _faults_json(request.app[STATE])


async def faults_clear(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.faults.clear()
    return _faults_json(state)


async def faults_add(request: web.Request) -> web.Response:
    """Queue a fault for the next ``count`` matching API requests (faults queue in order)."""
    state = request.app[STATE]
    data = await _control_body(request)
    if isinstance(data, web.Response):
        return data
    status = data.get("status")
    timeout = data.get("timeout_seconds", 0)
    count = data.get("count", 1)
    reason = data.get("reason", "")
    if status is not None and (
        isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
    ):
        return _bad("status must be an HTTP error status (400-599)")
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
    for name in ("reason", "path", "method"):
        if not isinstance(data.get(name, ""), str):
            return _bad(f"{name} must be a string")
    after = data.get("after_action", False)
    if not isinstance(after, bool):
        return _bad("after_action must be true or false")
    state.faults.append(
        _Fault(
            status=status,
            reason=reason or ("injected failure" if status else "injected hang"),
            timeout_seconds=float(timeout),
            remaining=count,
            path=data.get("path", ""),
            method=data.get("method", "").upper(),
            after_action=after,
        )
    )
    return _faults_json(state)


async def calls_get(request: web.Request) -> web.Response:
    state = request.app[STATE]
    rows = list(state.calls)
    path = request.query.get("path")
    if path:
        rows = [r for r in rows if path in r["path"]]
    key = request.query.get("idempotency_key")
    if key:
        rows = [r for r in rows if r["idempotency_key"] == key]
    return web.json_response({"calls": rows})


async def users_put(request: web.Request) -> web.Response:
    """Add or replace a user (tests: a user in a given status)."""
    state = request.app[STATE]
    data = await _control_body(request)
    if isinstance(data, web.Response):
        return data
    if not isinstance(data.get("id"), str) or not data["id"]:
        return _bad("id is required")
    if data.get("status", "active") not in STATUSES:
        return _bad(f"status must be one of: {', '.join(STATUSES)}")
    return web.json_response({"user": state.add_user(data)})


async def user_peek(request: web.Request) -> web.Response:
    """A user's state without auth or logging (tests assert on it)."""
    user = request.app[STATE].users.get(request.match_info["user_id"])
    if user is None:
        return web.json_response({"error": "no such user"}, status=404)
    return web.json_response({"user": user})


async def config_get(request: web.Request) -> web.Response:
    return web.json_response({"maximum": request.app[STATE].maximum})


async def config_set(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await _control_body(request)
    if isinstance(data, web.Response):
        return data
    maximum = data.get("maximum", {})
    if not isinstance(maximum, dict) or set(maximum) - set(LIMIT_FIELDS):
        return _bad(f"maximum takes {', '.join(LIMIT_FIELDS)}")
    for name, value in maximum.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return _bad(f"maximum.{name} must be a non-negative integer")
    state.maximum.update(maximum)
    return web.json_response({"maximum": state.maximum})


async def reset(request: web.Request) -> web.Response:
    request.app[STATE].forget()
    return web.json_response({"ok": True})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _on_shutdown(app: web.Application) -> None:
    # Releases held requests before aiohttp waits for the handlers to finish.
    app[STATE].closing.set()


def standin_app(config: StandinConfig) -> web.Application:
    """Build the stand-in's aiohttp application (state lives in ``app[STATE]``)."""
    if not config.token:
        raise ValueError("the stand-in needs a bearer token")
    app = web.Application(client_max_size=256 * 1024)
    state = _State(config=config)
    state.forget()
    app[STATE] = state
    app.on_shutdown.append(_on_shutdown)
    v1 = "/api/v1"
    app.add_routes(
        [
            web.get(f"{v1}/users", _api(users_search, write=False)),
            web.get(f"{v1}/users/{{user_id}}", _api(user_get, write=False)),
            web.post(f"{v1}/users/{{user_id}}/block", _api(user_block, write=True)),
            web.post(f"{v1}/users/{{user_id}}/unblock", _api(user_unblock, write=True)),
            web.post(
                f"{v1}/users/{{user_id}}/limits/temporary",
                _api(limits_temporary_set, write=True),
            ),
            web.post(
                f"{v1}/users/{{user_id}}/limits/temporary/revert",
                _api(limits_temporary_revert, write=True),
            ),
            web.post(f"{v1}/users/{{user_id}}/password-reset", _api(password_reset, write=True)),
            web.post(f"{v1}/users/{{user_id}}/disputes", _api(dispute_open, write=True)),
            web.post(f"{v1}/users/{{user_id}}/cheques/stop", _api(cheques_stop, write=True)),
            web.post(f"{v1}/cases", _api(case_open, write=True)),
            web.get(f"{v1}/cases/{{case_id}}", _api(case_get, write=False)),
            web.post(f"{v1}/cases/{{case_id}}/state", _api(case_state, write=True)),
            web.get(f"{v1}/limits/maximum", _api(maximum_get, write=False)),
            web.get("/healthz", healthz),
            web.get("/_standin/faults", faults_get),
            web.post("/_standin/faults", faults_add),
            web.delete("/_standin/faults", faults_clear),
            web.get("/_standin/calls", calls_get),
            web.post("/_standin/users", users_put),
            web.get("/_standin/users/{user_id}", user_peek),
            web.get("/_standin/config", config_get),
            web.post("/_standin/config", config_set),
            web.post("/_standin/reset", reset),
        ]
    )
    return app


@dataclass(frozen=True)
class StandinServer:
    """A running stand-in: ``url`` is its base URL (API and control API)."""

    url: str
    app: web.Application


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
    parser = argparse.ArgumentParser(
        prog="python -m backoffice_bridge.standin",
        description="Stand-in for the bank's back office (see docs/backoffice.md).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082, help="0 picks a free port")
    parser.add_argument(
        "--token",
        default=os.environ.get("BACKOFFICE_TOKEN"),
        help="the bearer token the hub sends (or BACKOFFICE_TOKEN)",
    )
    parser.add_argument("--max-daily", type=int, default=50_000)
    parser.add_argument("--max-single", type=int, default=20_000)
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("missing --token (or BACKOFFICE_TOKEN)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m backoffice_bridge.standin``."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = StandinConfig(
        token=args.token, max_daily_transfer=args.max_daily, max_single_transfer=args.max_single
    )
    asyncio.run(
        serve_until_signalled(
            standin_app(config), host=args.host, port=args.port, name="backoffice stand-in"
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
