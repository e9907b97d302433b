"""The back-office audit log (domain service and selectors): append-only and hash-chained.

Every change of the bridge (requests, consent, links) appends one ``AuditEntry`` **in the
transaction of the change** (``audit_append``), and every attempt the hub refused appends
one in its own small transaction (``audited`` wraps the services).  Entry *n* stores the
hash of entry *n-1* (``prev_hash``) and its own ``hash`` = SHA-256 over the canonical JSON
of its fields plus ``prev_hash``, so

- an edited row no longer matches its hash,
- a removed row leaves a gap in ``sequence`` (the newest ones: the chain head disagrees),
- a reordered row no longer follows the hash before it,

and ``audit_chain_verify`` (``manage.py audit_verify``) names the first such position.

Appends are serialised by a row lock on the one ``AuditChainHead`` row (``SELECT … FOR
UPDATE``; SQLite's writer lock does the same), so concurrent transactions never fork the
chain: each reads the last entry under the lock and commits before the next one reads.
Lock order: a service takes its own rows first, then the audit head, then the console
event log (``_announce`` comes after ``audit_append``), never the other way round.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from backoffice_bridge.models import ActionRequest, AuditChainHead, AuditEntry, CustomerLink
from hub.exceptions import HubError, PermissionDenied, ValidationFailed
from hub.roles import PERM_READ_AUDIT, PERM_START_ACTIONS, Role, role_of

GENESIS = "0" * 64
#: What an entry's ``outcome`` may be: done, or an attempt the hub turned down.
AUDIT_OUTCOMES = ("ok", "refused")
#: Fields covered by the hash, in the canonical form's key order (sorted anyway).
HASHED_FIELDS = (
    "sequence",
    "at",
    "actor_id",
    "actor_name",
    "actor_role",
    "on_behalf_of",
    "conversation_id",
    "action",
    "outcome",
    "object_type",
    "object_id",
    "request_id",
    "before",
    "after",
)
#: Arguments of a refused call worth keeping with the refusal (never the actor object).
_ATTEMPT_ARGS = (
    "action_type",
    "params",
    "bank_user_id",
    "reason",
    "scope",
    "evidence_reference",
    "consent_id",
    "query",
    "field",
)

P = ParamSpec("P")
R = TypeVar("R")


# --- hashing ---------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """The value exactly as the JSON column gives it back (so the hash can be recomputed
    from a read row): dates, decimals and UUIDs become strings."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_bytes(fields: dict[str, Any], prev_hash: str) -> bytes:
    """The canonical JSON of an entry: its hashed fields and ``prev_hash``, keys sorted,
    no whitespace, UTF-8, the time in UTC with microseconds."""
    body = {name: fields[name] for name in HASHED_FIELDS}
    body["at"] = _iso(body["at"]) if isinstance(body["at"], datetime) else body["at"]
    body["prev_hash"] = prev_hash
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(fields: dict[str, Any], prev_hash: str) -> str:
    return hashlib.sha256(canonical_bytes(fields, prev_hash)).hexdigest()


# --- appending -------------------------------------------------------------------------------


def actor_role_label(actor: AbstractBaseUser | None) -> str:
    """The actor's role as the log shows it ("system" for the hub's own jobs)."""
    if actor is None:
        return "system"
    role = role_of(actor)
    if role == Role.OPERATOR and actor.has_perm(PERM_START_ACTIONS):
        return Role.CONTACT_CENTER.value
    return role.value if role is not None else "none"


def _head_locked() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        try:
            with transaction.atomic():
                AuditChainHead.objects.create(pk=1)
        except IntegrityError:  # created by a concurrent first append
            pass
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head


def audit_append(
    *,
    action: str,
    actor: AbstractBaseUser | None,
    conversation_id: Any = None,
    on_behalf_of: str = "",
    object_type: str = "",
    object_id: Any = "",
    request_id: int | None = None,
    before: Any = None,
    after: Any = None,
    outcome: str = "ok",
    actor_role: str | None = None,
    actor_name: str | None = None,
) -> AuditEntry:
    """Append one entry to the chain.  Must run inside the transaction of the change it
    records (RuntimeError otherwise), so a rolled-back change leaves no entry and a
    committed one always has its entry.  Takes the chain head's row lock until commit.
    ``actor_role``/``actor_name`` name an actor who is not staff (the customer)."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_append runs inside the transaction of the change it records")
    head = _head_locked()
    last = AuditEntry.objects.order_by("-sequence").values("sequence", "hash").first()
    sequence = (last["sequence"] if last else 0) + 1
    prev_hash = last["hash"] if last else GENESIS
    name = ""
    if actor is not None:
        name = actor.get_full_name() or actor.get_username()  # type: ignore[attr-defined]
    fields: dict[str, Any] = {
        "sequence": sequence,
        "at": timezone.now().astimezone(UTC),
        "actor_id": actor.pk if actor is not None else None,
        "actor_name": actor_name or (name[:200] if actor is not None else "hub"),
        "actor_role": actor_role or actor_role_label(actor),
        "on_behalf_of": on_behalf_of or "",
        "conversation_id": str(conversation_id) if conversation_id else "",
        "action": action,
        "outcome": outcome,
        "object_type": object_type,
        "object_id": str(object_id) if object_id not in (None, "") else "",
        "request_id": request_id,
        "before": _json_safe(before),
        "after": _json_safe(after),
    }
    entry = AuditEntry(**fields, prev_hash=prev_hash, hash=entry_hash(fields, prev_hash))
    entry.save()
    head.sequence = sequence
    head.hash = entry.hash
    head.save(update_fields=["sequence", "hash"])
    return entry


def _on_behalf_for(kwargs: dict[str, Any]) -> tuple[str, str, int | None]:
    """Best effort (bank user, conversation, request id) of a refused call's arguments."""
    conversation_id = str(kwargs.get("conversation_id") or "")
    request_id: int | None = None
    bank_user = ""
    try:
        if kwargs.get("request_id") is not None:
            request_id = int(kwargs["request_id"])
            row = (
                ActionRequest.objects.filter(pk=request_id)
                .values("bank_user_id", "conversation_id")
                .first()
            )
            if row is not None:
                bank_user = row["bank_user_id"]
                conversation_id = conversation_id or str(row["conversation_id"])
            else:
                request_id = None
        elif conversation_id:
            bank_user = (
                CustomerLink.objects.filter(
                    customer__conversations__pk=conversation_id, unlinked_at__isnull=True
                )
                .values_list("bank_user_id", flat=True)
                .first()
                or ""
            )
    except (TypeError, ValueError, ValidationError, OverflowError):
        pass  # an id that is not one: the refusal is still recorded, without the lookup
    return bank_user, conversation_id[:64], request_id


def audit_refusal(*, action: str, error: HubError, kwargs: dict[str, Any]) -> AuditEntry:
    """Record an attempt the hub refused, in its own small transaction."""
    actor = kwargs.get("actor")
    actor = actor if isinstance(actor, AbstractBaseUser) else None
    bank_user, conversation_id, request_id = _on_behalf_for(kwargs)
    attempt = {name: kwargs[name] for name in _ATTEMPT_ARGS if kwargs.get(name) is not None}
    with transaction.atomic():
        return audit_append(
            action=action,
            actor=actor,
            conversation_id=conversation_id,
            on_behalf_of=bank_user,
            object_type="request" if request_id else "",
            object_id=request_id or "",
            request_id=request_id,
            after={"error": error.as_dict(), "attempt": attempt},
            outcome="refused",
        )


def audited(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator for a service: an attempt it refuses (any HubError) is audited as
    ``outcome=refused`` with the error and the attempted arguments, then re-raised.  The
    successful path audits itself, inside its transaction."""

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @wraps(func)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except HubError as exc:
                audit_refusal(action=action, error=exc, kwargs=dict(kwargs))
                raise

        return inner

    return wrap


# --- verifying -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainReport:
    """What ``audit_chain_verify`` found: ``ok``, how many entries it checked, and for a
    broken chain the first bad ``sequence`` with a ``reason`` (``missing``,
    ``broken_link``, ``hash_mismatch``, ``head_mismatch``) and a readable ``problem``."""

    ok: bool
    checked: int
    sequence: int | None = None
    reason: str = ""
    problem: str = ""


def audit_chain_verify(*, chunk: int = 2000) -> ChainReport:
    """Walk the whole chain in sequence order and report the first broken or missing link."""
    expected, prev_hash, checked = 1, GENESIS, 0
    names = (*HASHED_FIELDS, "prev_hash", "hash")
    for row in AuditEntry.objects.order_by("sequence").values(*names).iterator(chunk):
        seq = row["sequence"]
        if seq != expected:
            return ChainReport(
                ok=False,
                checked=checked,
                sequence=expected,
                reason="missing",
                problem=f"entry {expected} is missing (the next one found is {seq})",
            )
        if row["prev_hash"] != prev_hash:
            return ChainReport(
                ok=False,
                checked=checked,
                sequence=seq,
                reason="broken_link",
                problem=(
                    f"entry {seq} does not follow entry {seq - 1}: its previous hash "
                    f"{row['prev_hash'][:12]}… is not {prev_hash[:12]}… (reordered, "
                    "replaced or a re-hashed edit before it)"
                ),
            )
        if entry_hash(row, row["prev_hash"]) != row["hash"]:
            return ChainReport(
                ok=False,
                checked=checked,
                sequence=seq,
                reason="hash_mismatch",
                problem=f"entry {seq} does not match its hash (edited)",
            )
        prev_hash = row["hash"]
        expected += 1
        checked += 1
    head = AuditChainHead.objects.filter(pk=1).values("sequence", "hash").first()
    if head is not None and (head["sequence"], head["hash"]) != (expected - 1, prev_hash):
        if head["sequence"] > expected - 1:
            return ChainReport(
                ok=False,
                checked=checked,
                sequence=expected,
                reason="missing",
                problem=(
                    f"entry {expected} is missing: the chain head says {head['sequence']} "
                    f"entries were written, {expected - 1} are left"
                ),
            )
        return ChainReport(
            ok=False,
            checked=checked,
            sequence=expected - 1,
            reason="head_mismatch",
            problem=f"the chain head ({head['sequence']}) disagrees with the last entry",
        )
    return ChainReport(ok=True, checked=checked)


# --- reading (selectors) -----------------------------------------------------------------


def entry_dict(entry: dict[str, Any]) -> dict[str, Any]:
    out = {name: entry[name] for name in (*HASHED_FIELDS, "prev_hash", "hash")}
    out["at"] = _iso(entry["at"])
    return out


def _moment(raw: str, *, name: str, end: bool) -> datetime:
    """An ISO date-time, or a date (its start; for ``until`` the next day's start)."""
    # A plain date first: parse_datetime would read "2026-11-25" as its midnight.
    day = parse_date(raw) if len(raw) == 10 else None
    if day is None:
        parsed = parse_datetime(raw)
        if parsed is not None:
            return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)
        raise ValidationFailed(
            f"'{name}' must be an ISO date or date-time.", field=name, reason="not_a_date"
        )
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def audit_entries_query(
    *,
    actor: AbstractBaseUser,
    actor_id: int | None = None,
    action: str | None = None,
    conversation_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    outcome: str | None = None,
) -> Any:
    """The filtered entries, newest first (``since`` inclusive, ``until`` exclusive; a
    plain date as ``until`` includes that day; ``outcome`` "ok" or "refused").
    PermissionDenied without ``backoffice_bridge.read_audit_log`` (admins)."""
    if not actor.has_perm(PERM_READ_AUDIT):
        raise PermissionDenied("Only administrators read the audit log.")
    qs = AuditEntry.objects.all()
    if actor_id is not None:
        qs = qs.filter(actor_id=actor_id)
    if action:
        qs = qs.filter(action=action)
    if conversation_id:
        qs = qs.filter(conversation_id=conversation_id)
    if since:
        qs = qs.filter(at__gte=_moment(since, name="since", end=False))
    if until:
        qs = qs.filter(at__lt=_moment(until, name="until", end=True))
    if outcome:
        if outcome not in AUDIT_OUTCOMES:
            raise ValidationFailed(
                f"'outcome' must be one of: {', '.join(AUDIT_OUTCOMES)}.", field="outcome"
            )
        qs = qs.filter(outcome=outcome)
    return qs.order_by("-sequence")


def audit_entries_page(
    *, actor: AbstractBaseUser, page: int = 1, page_size: int = 100, **filters: Any
) -> dict[str, Any]:
    """One page of ``audit_entries_query`` (``page`` from 1, ``page_size`` 1 to 500)."""
    if page < 1 or not 1 <= page_size <= 500:
        raise ValidationFailed(
            "page starts at 1 and page_size is 1 to 500.", field="page", reason="out_of_range"
        )
    qs = audit_entries_query(actor=actor, **filters)
    total = qs.count()
    start = (page - 1) * page_size
    rows = [entry_dict(r) for r in qs.values()[start : start + page_size]]
    return {
        "entries": rows,
        "page": page,
        "page_size": page_size,
        "total": total,
        "next_page": page + 1 if start + page_size < total else None,
    }


CSV_COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")


def audit_entries_rows(*, actor: AbstractBaseUser, **filters: Any) -> Iterator[list[str]]:
    """The CSV export's rows (a header first), streamed in chunks."""
    qs = audit_entries_query(actor=actor, **filters)
    yield list(CSV_COLUMNS)
    for row in qs.values().iterator(2000):
        wire = entry_dict(row)
        yield [
            json.dumps(wire[c], sort_keys=True) if c in ("before", "after") else wire[c]
            for c in CSV_COLUMNS
        ]
