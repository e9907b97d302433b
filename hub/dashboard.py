"""Dashboard read layer (selectors): the analytics managers read at ``/dashboard/``.

Every figure is an SQL aggregate over indexed columns — a ``GROUP BY``, a ``COUNT``, a
percentile — so the cost grows with what the database scans, never with a Python loop over
rows; Python only shapes the few grouped rows into the JSON the page draws.  It reads the
models of several apps (chat, routing, scheduling, backoffice_bridge) and writes nothing:
a cross-app read model, like the audit log's export.

Two parts (docs/architecture.md, "Dashboard"):

* ``dashboard_live``: the queue per query type (length, longest wait), the conversations
  held out of hours, the operators online and their load against their capacity.
* ``dashboard_period``: over ``[from, to)`` with optional type and channel filters.
  Conversations are counted by when they *opened* (``created_at``): volume by type and
  channel and over time, first-response time (opening → first operator reply; system
  messages such as the out-of-hours autoreply are not replies), conversations per
  operator (the operator holding or having closed it).  Closes are counted by when they
  *closed* (``closed_at``): closes by resolution reason and resolution time (opening →
  close).  Out-of-hours volume comes from ``scheduling.OutOfHoursRecord`` (one row per
  conversation and closed period: held or closed, with or without the autoreply);
  back-office actions and approval turnaround (created → decided by a checker) from
  ``backoffice_bridge.ActionRequest``, by when the request was made.

Percentiles are ``percentile_cont`` (linear interpolation between the two nearest ranks)
on PostgreSQL; SQLite has no such aggregate, so the fallback numbers the values with a
window function and reads only the (at most four) rows around each rank — the same
definition, computed in the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    FloatField,
    Func,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce, TruncDay, TruncMonth, TruncWeek
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from hub.exceptions import ErrorCode, PermissionDenied, ValidationFailed
from hub.roles import PERM_VIEW_DASHBOARD

#: The longest period one request may cover (a year and a bit, so "the last 12 months"
#: and a whole calendar year both fit).
MAX_PERIOD_DAYS = 400
PERCENTILES = (0.5, 0.9)


def dashboard_access(actor: AbstractBaseUser | AnonymousUser) -> None:
    """Refuse anyone without ``hub.view_dashboard`` (coordinators and admins hold it)."""
    if not actor.has_perm(PERM_VIEW_DASHBOARD):
        raise PermissionDenied("Only coordinators and admins may read the dashboard.")


# --- the period and its filters --------------------------------------------------------
@dataclass(frozen=True)
class PeriodFilter:
    """``[start, end)`` with optional query type and channel; built by ``period_parse``."""

    start: datetime
    end: datetime
    query_type_id: int | None = None
    channel: str | None = None

    @property
    def bucket(self) -> str:
        """The time-series step: days up to two months, weeks up to a year, else months."""
        days = (self.end - self.start).total_seconds() / 86400
        if days <= 62:
            return "day"
        if days <= 371:
            return "week"
        return "month"


def _instant(raw: str | None, name: str) -> datetime:
    """A date (``2026-11-01``: midnight in the hub's time zone; for ``to``, the day is the
    exclusive end) or an ISO 8601 date-time (naive: the hub's time zone)."""
    if raw is None or raw.strip() == "":
        raise ValidationFailed(
            f"Query parameter '{name}' is required (a date YYYY-MM-DD or an ISO 8601 date-time).",
            code=ErrorCode.MISSING_FIELD,
            field=name,
        )
    raw = raw.strip()
    try:
        if len(raw) == 10:
            day = parse_date(raw)
            value = datetime.combine(day, time.min) if day else None
        else:
            value = parse_datetime(raw.replace(" ", "T", 1) if "T" not in raw else raw)
    except ValueError:  # well formed but impossible: 2026-02-30, 25:00
        value = None
    if value is None:
        raise ValidationFailed(
            f"Query parameter '{name}' is not a valid date (YYYY-MM-DD) or ISO 8601 "
            f"date-time: {raw[:40]!r}.",
            field=name,
            value=raw[:40],
        )
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return value


def period_parse(
    *,
    raw_from: str | None,
    raw_to: str | None,
    raw_type: str | None = None,
    raw_channel: str | None = None,
) -> PeriodFilter:
    """The query string's period, or a precise ``ValidationFailed`` naming the field:
    missing or malformed dates, ``to`` not after ``from``, a period over
    ``MAX_PERIOD_DAYS``, an unknown query type or channel."""
    from chat.models import Channel
    from routing.models import QueryType

    start = _instant(raw_from, "from")
    end = _instant(raw_to, "to")
    if end <= start:
        raise ValidationFailed(
            "'to' must be after 'from' (the period is [from, to): 'to' is excluded).",
            field="to",
            **{"from": start.isoformat(), "to": end.isoformat()},
        )
    if end - start > timedelta(days=MAX_PERIOD_DAYS):
        raise ValidationFailed(
            f"The period may cover at most {MAX_PERIOD_DAYS} days.",
            field="to",
            max_days=MAX_PERIOD_DAYS,
        )
    query_type_id = None
    if raw_type:
        if not (raw_type.isascii() and raw_type.isdigit() and len(raw_type) < 10):
            raise ValidationFailed(
                "Query parameter 'type' must be a query type id (an integer).", field="type"
            )
        query_type_id = int(raw_type)
        if not QueryType.objects.filter(pk=query_type_id).exists():
            raise ValidationFailed(
                f"There is no query type {query_type_id}.", field="type", value=query_type_id
            )
    channel = None
    if raw_channel:
        if raw_channel not in Channel.values:
            raise ValidationFailed(
                f"Unknown channel {raw_channel[:40]!r}.",
                field="channel",
                allowed=list(Channel.values),
            )
        channel = raw_channel
    return PeriodFilter(start=start, end=end, query_type_id=query_type_id, channel=channel)


def default_period(*, today: date | None = None) -> tuple[date, date]:
    """The page's first period: the last 30 days, today included (``to`` is exclusive)."""
    today = today or timezone.localdate()
    return today - timedelta(days=29), today + timedelta(days=1)


# --- SQL building blocks ----------------------------------------------------------------
class Seconds(Func):
    """``end - start`` in seconds as a float, natively on each database (Django's own
    duration arithmetic goes through a Python function per row on SQLite)."""

    output_field = FloatField()

    def __init__(self, end: str, start: str) -> None:
        super().__init__(F(end), F(start))

    def _parts(self, compiler: Any, connection: Any) -> tuple[str, str, list[Any]]:
        end_sql, end_params = compiler.compile(self.source_expressions[0])
        start_sql, start_params = compiler.compile(self.source_expressions[1])
        return end_sql, start_sql, [*end_params, *start_params]

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        end_sql, start_sql, params = self._parts(compiler, connection)
        return f"date_part('epoch', ({end_sql}) - ({start_sql}))", params

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        end_sql, start_sql, params = self._parts(compiler, connection)
        return f"((julianday({end_sql}) - julianday({start_sql})) * 86400.0)", params


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def _duration_stats(queryset: QuerySet, *, end: str, start: str) -> dict[str, Any]:
    """Count, mean, median and p90 of ``end - start`` (seconds) over the rows of
    ``queryset`` whose ``end`` is set: one statement on PostgreSQL, two on SQLite."""
    values = queryset.filter(**{f"{end}__isnull": False}).annotate(v=Seconds(end, start))
    sql, params = values.values("v").query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*), avg(v), percentile_cont(%s::float8[]) WITHIN GROUP "
                f"(ORDER BY v) FROM ({sql}) AS d",
                [list(PERCENTILES), *params],
            )
            count, mean, ranks = cursor.fetchone()
            quantiles = list(ranks) if ranks is not None else [None] * len(PERCENTILES)
        else:
            cursor.execute(f"SELECT count(*), avg(v) FROM ({sql}) AS d", params)
            count, mean = cursor.fetchone()
            quantiles = _sqlite_percentiles(sql, params, count)
    return {
        "count": count,
        "mean_s": _round(mean),
        **{f"{_label(p)}_s": _round(q) for p, q in zip(PERCENTILES, quantiles, strict=True)},
    }


def _label(p: float) -> str:
    return "median" if p == 0.5 else f"p{round(p * 100)}"


def _sqlite_percentiles(sql: str, params: Any, count: int) -> list[float | None]:
    """``percentile_cont`` for SQLite: the values at the two ranks around ``p·(n-1)``
    (0-based), read with ``ROW_NUMBER()``, interpolated linearly."""
    if not count:
        return [None] * len(PERCENTILES)
    wanted: dict[float, tuple[int, int, float]] = {}
    for p in PERCENTILES:
        position = p * (count - 1)
        low = math.floor(position)
        wanted[p] = (low, min(low + 1, count - 1), position - low)
    ranks = sorted({rank for low, high, _ in wanted.values() for rank in (low, high)})
    marks = ", ".join("%s" for _ in ranks)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i, v FROM (SELECT v, ROW_NUMBER() OVER (ORDER BY v) - 1 AS i "
            f"FROM ({sql}) AS d) AS r WHERE i IN ({marks})",
            [*params, *ranks],
        )
        at = dict(cursor.fetchall())
    return [at[low] + (at[high] - at[low]) * fraction for low, high, fraction in wanted.values()]


def _user_names(user_ids: set[int]) -> dict[int, str]:
    users = get_user_model().objects.filter(pk__in=user_ids)
    return {
        row["pk"]: (f"{row['first_name']} {row['last_name']}".strip() or row["username"])
        for row in users.values("pk", "first_name", "last_name", "username")
    }


def _type_names() -> dict[int, str]:
    from routing.models import QueryType

    return dict(QueryType.objects.values_list("pk", "name"))


def _channel_label(channel: str) -> str:
    from chat.models import Channel

    try:
        return str(Channel(channel).label)
    except ValueError:
        return channel


def _held_waiting() -> QuerySet:
    """Conversations held for the opening and not yet released (a small partial index)."""
    from scheduling.models import OutOfHoursRecord

    return OutOfHoursRecord.objects.filter(
        action=OutOfHoursRecord.Action.HELD, released_at__isnull=True
    )


# --- live -------------------------------------------------------------------------------
def dashboard_live(*, actor: AbstractBaseUser, now: datetime | None = None) -> dict[str, Any]:
    """What is happening now: the queue per query type (length, longest wait: since the
    hand-over that queued it, else since it opened), conversations held out of hours, and
    every operator not offline with their load.  Five queries whatever the volume: the
    queue reads the ``(status, created_at)`` index, loads the ``(operator, status)`` one."""
    from chat.models import Conversation, ConversationStatus
    from routing.models import Assignment, OperatorState, Presence

    dashboard_access(actor)
    now = now or timezone.now()
    last_hand_over = (
        Assignment.objects.filter(conversation_id=OuterRef("pk"))
        .order_by("-id")
        .values("created_at")[:1]
    )
    held = _held_waiting().filter(conversation_id=OuterRef("pk"))
    queued = (
        Conversation.objects.filter(status=ConversationStatus.QUEUED)
        .annotate(held=Exists(held), since=Coalesce(Subquery(last_hand_over), "created_at"))
        .order_by()
        .values("query_type_id", "held")
        .annotate(n=Count("pk"), oldest=Min("since"))
    )
    names = _type_names()
    by_type: dict[int | None, dict[str, Any]] = {}
    for row in queued:
        entry = by_type.setdefault(
            row["query_type_id"],
            {
                "type_id": row["query_type_id"],
                "type": names.get(row["query_type_id"], "No type yet"),
                "queued": 0,
                "longest_wait_s": None,
                "held": 0,
            },
        )
        if row["held"]:
            entry["held"] += row["n"]
            continue
        entry["queued"] += row["n"]
        wait = max(0.0, (now - row["oldest"]).total_seconds())
        entry["longest_wait_s"] = max(entry["longest_wait_s"] or 0.0, round(wait, 1))
    queue = sorted(by_type.values(), key=lambda e: (-e["queued"], e["type"]))

    load = (
        Conversation.objects.filter(
            operator_id=OuterRef("user_id"), status=ConversationStatus.ASSIGNED
        )
        .order_by()
        .values("operator_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    states = list(
        OperatorState.objects.exclude(presence=Presence.OFFLINE)
        .annotate(load=Coalesce(Subquery(load), 0))
        .values("user_id", "presence", "capacity", "load", "presence_changed_at")
    )
    user_names = _user_names({s["user_id"] for s in states})
    operators = sorted(
        (
            {
                "id": s["user_id"],
                "name": user_names.get(s["user_id"], str(s["user_id"])),
                "presence": s["presence"],
                "load": s["load"],
                "capacity": s["capacity"],
                "since": s["presence_changed_at"].isoformat(),
            }
            for s in states
        ),
        key=lambda o: (o["presence"] != Presence.ONLINE, o["name"].lower()),
    )
    online = [o for o in operators if o["presence"] == Presence.ONLINE]
    return {
        "at": now.isoformat(),
        "queue": queue,
        "queued_total": sum(e["queued"] for e in queue),
        "held_total": sum(e["held"] for e in queue),
        "longest_wait_s": max((e["longest_wait_s"] or 0.0 for e in queue), default=0.0),
        "operators": operators,
        "online": len(online),
        "away": sum(o["presence"] == Presence.AWAY for o in operators),
        "load": sum(o["load"] for o in online),
        "capacity": sum(o["capacity"] for o in online),
    }


# --- the period -------------------------------------------------------------------------
def _opened(period: PeriodFilter) -> QuerySet:
    from chat.models import Conversation

    rows = Conversation.objects.filter(created_at__gte=period.start, created_at__lt=period.end)
    return _filtered(rows, period)


def _closed(period: PeriodFilter) -> QuerySet:
    from chat.models import Conversation, ConversationStatus

    rows = Conversation.objects.filter(
        status=ConversationStatus.CLOSED,
        closed_at__gte=period.start,
        closed_at__lt=period.end,
    )
    return _filtered(rows, period)


def _filtered(rows: QuerySet, period: PeriodFilter, prefix: str = "") -> QuerySet:
    if period.query_type_id is not None:
        rows = rows.filter(**{f"{prefix}query_type_id": period.query_type_id})
    if period.channel is not None:
        rows = rows.filter(**{f"{prefix}channel": period.channel})
    return rows


@dataclass(frozen=True)
class _OpenedGroups:
    type_channel: list[dict[str, Any]]  # query_type_id, channel, n
    operator: list[dict[str, Any]]  # operator_id, n, closed, answered
    series: list[dict[str, Any]]  # bucket, n


def _opened_groups(period: PeriodFilter) -> _OpenedGroups:
    """The conversations opened in the period, counted three ways: by type and channel,
    by operator (with how many are closed and answered) and by time bucket.  Three
    ``GROUP BY``s, each hashed over few groups: one ``GROUPING SETS`` pass was measured
    slower on PostgreSQL (it cannot estimate the buckets, so it walked an index in operator
    order instead of hashing) and SQLite has none."""
    from chat.models import ConversationStatus

    trunc = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}[period.bucket]
    rows = (
        _opened(period)
        .annotate(bucket=trunc("created_at", tzinfo=timezone.get_current_timezone()))
        .order_by()
    )
    closed = ConversationStatus.CLOSED.value
    return _OpenedGroups(
        type_channel=list(
            rows.values("query_type_id", "channel")
            .annotate(n=Count("pk"))
            .order_by("query_type_id", "channel")
        ),
        operator=list(
            rows.filter(operator_id__isnull=False)
            .values("operator_id")
            .annotate(
                n=Count("pk"),
                closed=Count("pk", filter=Q(status=closed)),
                answered=Count("pk", filter=Q(first_operator_reply_at__isnull=False)),
            )
        ),
        series=list(rows.values("bucket").annotate(n=Count("pk"))),
    )


def _volume(period: PeriodFilter, groups: _OpenedGroups, names: dict[int, str]) -> dict[str, Any]:
    """Conversations opened, by type, by channel, by both and over time."""
    grouped = groups.type_channel
    by_type: dict[int | None, int] = {}
    by_channel: dict[str, int] = {}
    for row in grouped:
        by_type[row["query_type_id"]] = by_type.get(row["query_type_id"], 0) + row["n"]
        by_channel[row["channel"]] = by_channel.get(row["channel"], 0) + row["n"]
    series = groups.series
    return {
        "total": sum(by_type.values()),
        "by_type": sorted(
            (
                {"type_id": t, "type": names.get(t, "No type") if t else "No type", "count": n}
                for t, n in by_type.items()
            ),
            key=lambda e: (-e["count"], e["type"]),
        ),
        "by_channel": sorted(
            ({"channel": c, "label": _channel_label(c), "count": n} for c, n in by_channel.items()),
            key=lambda e: (-e["count"], e["channel"]),
        ),
        "by_type_channel": [
            {"type_id": r["query_type_id"], "channel": r["channel"], "count": r["n"]}
            for r in grouped
        ],
        "over_time": _series_filled(period, {_bucket_iso(r["bucket"]): r["n"] for r in series}),
    }


def _series_filled(period: PeriodFilter, counts: dict[str, int]) -> list[dict[str, Any]]:
    """Every bucket of the period, those without conversations at 0, so a chart's axis is
    continuous (at most ~60 days, ~53 weeks or ~14 months: a loop over buckets, not rows)."""
    zone = timezone.get_current_timezone()
    first = timezone.localtime(period.start, zone).date()
    last = timezone.localtime(period.end - timedelta(microseconds=1), zone).date()
    if period.bucket == "week":
        first -= timedelta(days=first.weekday())
    elif period.bucket == "month":
        first = first.replace(day=1)
    starts = []
    current = first
    while current <= last:
        starts.append(current.isoformat())
        if period.bucket == "day":
            current += timedelta(days=1)
        elif period.bucket == "week":
            current += timedelta(days=7)
        else:
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
    return [{"start": start, "count": counts.get(start, 0)} for start in starts]


def _bucket_iso(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return (
            timezone.localtime(value).date().isoformat()
            if timezone.is_aware(value)
            else (value.date().isoformat())
        )
    return value.isoformat()


def _per_operator(groups: _OpenedGroups) -> list[dict[str, Any]]:
    """Conversations opened in the period per operator holding (or having closed) them."""
    rows = groups.operator
    names = _user_names({r["operator_id"] for r in rows})
    return sorted(
        (
            {
                "id": r["operator_id"],
                "name": names.get(r["operator_id"], str(r["operator_id"])),
                "conversations": r["n"],
                "closed": r["closed"],
                "answered": r["answered"],
            }
            for r in rows
        ),
        key=lambda e: (-e["conversations"], e["name"].lower()),
    )


def _closes(period: PeriodFilter) -> list[dict[str, Any]]:
    from routing.models import ResolutionReason

    rows = list(_closed(period).order_by().values("resolution_id").annotate(n=Count("pk")))
    names = dict(
        ResolutionReason.objects.filter(
            pk__in=[r["resolution_id"] for r in rows if r["resolution_id"]]
        ).values_list("pk", "name")
    )
    return sorted(
        (
            {
                "reason_id": r["resolution_id"],
                "reason": names.get(r["resolution_id"], "No reason")
                if r["resolution_id"]
                else "No reason",
                "count": r["n"],
            }
            for r in rows
        ),
        key=lambda e: (-e["count"], e["reason"]),
    )


def _out_of_hours(period: PeriodFilter) -> dict[str, Any]:
    """What the scheduling app recorded for conversations that arrived or waited while
    the service was closed: one record per conversation and closed period."""
    from scheduling.models import OutOfHoursRecord

    held = OutOfHoursRecord.Action.HELD
    rows = _filtered(
        OutOfHoursRecord.objects.filter(created_at__gte=period.start, created_at__lt=period.end),
        period,
    ).aggregate(
        total=Count("pk"),
        conversations=Count("conversation_id", distinct=True),
        held=Count("pk", filter=Q(action=held)),
        closed=Count("pk", filter=Q(action=OutOfHoursRecord.Action.CLOSED)),
        released=Count("pk", filter=Q(action=held, released_at__isnull=False)),
        autoreplies=Count("pk", filter=Q(message_id__isnull=False)),
    )
    return rows


def _backoffice(period: PeriodFilter) -> dict[str, Any]:
    """Back-office requests made in the period, by action type and status (the outcome),
    and the approval turnaround: created → decided, for requests a checker decided."""
    from backoffice_bridge.actions import action_types
    from backoffice_bridge.models import ActionRequest, RequestStatus

    requests = _filtered(
        ActionRequest.objects.filter(created_at__gte=period.start, created_at__lt=period.end),
        period,
        prefix="conversation__",
    )
    rows = list(
        requests.order_by()
        .values("action_type", "status")
        .annotate(n=Count("pk"))
        .order_by("action_type", "status")
    )
    labels = {cls.name: str(cls.label) for cls in action_types()}
    by_type: dict[str, dict[str, Any]] = {}
    by_status: dict[str, int] = {}
    for row in rows:
        entry = by_type.setdefault(
            row["action_type"],
            {
                "action_type": row["action_type"],
                "label": labels.get(row["action_type"], row["action_type"]),
                "total": 0,
                "by_status": {},
            },
        )
        entry["total"] += row["n"]
        entry["by_status"][row["status"]] = row["n"]
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
    # A checker's decision: approved (then executing, done or failed) or rejected.  Auto-
    # approved requests have no checker; expired and cancelled ones were nobody's decision,
    # even when a checker had picked them up.
    decided = [
        RequestStatus.APPROVED,
        RequestStatus.REJECTED,
        RequestStatus.EXECUTING,
        RequestStatus.DONE,
        RequestStatus.FAILED,
    ]
    turnaround = _duration_stats(
        requests.filter(checker_id__isnull=False, status__in=decided),
        end="decided_at",
        start="created_at",
    )
    return {
        "total": sum(by_status.values()),
        "by_type": sorted(by_type.values(), key=lambda e: (-e["total"], e["action_type"])),
        "by_status": dict(sorted(by_status.items())),
        "approval_turnaround": turnaround,
        "status_labels": {value: str(label) for value, label in RequestStatus.choices},
    }


def dashboard_period(*, actor: AbstractBaseUser, period: PeriodFilter) -> dict[str, Any]:
    """Every figure of the period (see the module docstring for what each counts).
    About fourteen statements whatever the volume, each one aggregate."""
    dashboard_access(actor)
    names = _type_names()
    groups = _opened_groups(period)
    volume = _volume(period, groups, names)
    first_response = _duration_stats(
        _opened(period), end="first_operator_reply_at", start="created_at"
    )
    first_response["unanswered"] = volume["total"] - first_response["count"]
    return {
        "period": {
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
            "type": period.query_type_id,
            "channel": period.channel,
            "bucket": period.bucket,
        },
        "conversations": volume,
        "first_response": first_response,
        "resolution": _duration_stats(_closed(period), end="closed_at", start="created_at"),
        "operators": _per_operator(groups),
        "closes_by_reason": _closes(period),
        "out_of_hours": _out_of_hours(period),
        "backoffice": _backoffice(period),
    }


# --- CSV --------------------------------------------------------------------------------
def _cell(value: Any) -> Any:
    """Names typed by staff must not run as spreadsheet formulas when opened."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def dashboard_period_rows(data: dict[str, Any]) -> list[list[Any]]:
    """The period's figures as CSV rows: ``section, item, detail, value``."""
    period = data["period"]
    rows: list[list[Any]] = [["section", "item", "detail", "value"]]
    rows += [["period", key, "", period[key]] for key in ("from", "to", "type", "channel")]
    volume = data["conversations"]
    rows.append(["conversations", "total", "", volume["total"]])
    rows += [["conversations_by_type", e["type"], "", e["count"]] for e in volume["by_type"]]
    rows += [
        ["conversations_by_channel", e["label"], e["channel"], e["count"]]
        for e in volume["by_channel"]
    ]
    rows += [
        ["conversations_over_time", e["start"], period["bucket"], e["count"]]
        for e in volume["over_time"]
    ]
    for section in ("first_response", "resolution"):
        rows += [[section, key, "", value] for key, value in data[section].items()]
    for e in data["operators"]:
        rows += [
            ["operators", e["name"], key, e[key]] for key in ("conversations", "closed", "answered")
        ]
    rows += [["closes_by_reason", e["reason"], "", e["count"]] for e in data["closes_by_reason"]]
    rows += [["out_of_hours", key, "", value] for key, value in data["out_of_hours"].items()]
    backoffice = data["backoffice"]
    rows.append(["backoffice", "total", "", backoffice["total"]])
    for e in backoffice["by_type"]:
        rows += [
            ["backoffice_by_type", e["label"], status, n] for status, n in e["by_status"].items()
        ]
    rows += [
        ["approval_turnaround", key, "", value]
        for key, value in backoffice["approval_turnaround"].items()
    ]
    return [[_cell(value) for value in row] for row in rows]
