"""Scheduling services (writes): schedules, special days, the holidays import, and what
happens to a conversation out of hours (the autoreply, once per closed period, then held
for the opening or closed).

Every input is checked in full before anything is written, so bad input saves nothing.
Schedules carry a ``version`` and special days their own: a save with an older one is
refused with ``stale_version``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import formats, timezone, translation
from django.utils.dates import WEEKDAYS as WEEKDAY_NAMES

from hub.exceptions import Conflict, ErrorCode, NotFound, ValidationFailed
from routing.models import QueryType, ResolutionReason
from routing.services import resolution_check
from scheduling import hours as logic
from scheduling.models import Autoreply, OutOfHoursRecord, Schedule, SpecialDay, WeeklyInterval
from scheduling.selectors import (
    holidays_lookup,
    hours_access,
    hours_of,
    query_type_by_code,
    schedule_dict,
    schedule_for_scope,
    schedule_governing,
    schedule_require,
    special_day_dates_in_year,
    special_day_dict,
)

if TYPE_CHECKING:
    from chat.models import Conversation

logger = logging.getLogger(__name__)

PLACEHOLDER = "{next_opening}"
AUTOREPLY_MAX_CHARS = 2000
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_BRACES = re.compile(r"\{[^{}]*\}")
# "closed since" of a schedule that has never been open (no change within the horizon).
_NEVER_OPEN = datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC"))


# --- parsing ------------------------------------------------------------------------------------
def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationFailed(
            f"Field '{name}' must be a boolean.", code=ErrorCode.WRONG_TYPE, field=name
        )
    return value


def _span(item: object, name: str) -> logic.Span:
    if not isinstance(item, dict):
        raise ValidationFailed(
            f"{name} must be an object with start and end.", code=ErrorCode.WRONG_TYPE, field=name
        )
    for key in ("start", "end"):
        if key not in item:
            raise ValidationFailed(
                f"{name}.{key} is required.", code=ErrorCode.MISSING_FIELD, field=f"{name}.{key}"
            )
    start, _ = logic.time_parse(item["start"], field_name=f"{name}.start")
    end, to_midnight = logic.time_parse(item["end"], field_name=f"{name}.end", end=True)
    crosses = _bool(item.get("crosses_midnight", False), f"{name}.crosses_midnight")
    return logic.Span(start, end, crosses or to_midnight)


def weekly_parse(items: object) -> list[tuple[int, logic.Span]]:
    """``[{"weekday": 0, "start": "09:00", "end": "13:00", "crosses_midnight": false}, …]``,
    checked: each interval valid, none overlapping another (across midnight too)."""
    if not isinstance(items, list):
        raise ValidationFailed(
            "Field 'weekly' must be a list.", code=ErrorCode.WRONG_TYPE, field="weekly"
        )
    spans = []
    for index, item in enumerate(items):
        name = f"weekly[{index}]"
        weekday = item.get("weekday") if isinstance(item, dict) else None
        if not isinstance(weekday, int) or isinstance(weekday, bool):
            raise ValidationFailed(
                f"{name}.weekday must be an integer, 0 (Monday) to 6 (Sunday).",
                code=ErrorCode.WRONG_TYPE if weekday is not None else ErrorCode.MISSING_FIELD,
                field=f"{name}.weekday",
            )
        spans.append((weekday, _span(item, name)))
    logic.weekly_check(spans)
    return spans


def day_intervals_parse(items: object) -> list[logic.Span]:
    if not isinstance(items, list):
        raise ValidationFailed(
            "Field 'intervals' must be a list.", code=ErrorCode.WRONG_TYPE, field="intervals"
        )
    spans = [_span(item, f"intervals[{index}]") for index, item in enumerate(items)]
    logic.day_spans_check(spans)
    return spans


def _language(value: object, name: str) -> str:
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise ValidationFailed(
            f"{name} must be a language code such as en, es or pt-BR.",
            field=name,
            reason="bad_language",
        )
    return value


def autoreplies_parse(value: object) -> dict[str, str]:
    """``{"en": "We are closed. We open {next_opening}.", …}``: only ``{next_opening}``
    may appear in braces."""
    if not isinstance(value, dict):
        raise ValidationFailed(
            "Field 'autoreplies' must be an object of language → text.",
            code=ErrorCode.WRONG_TYPE,
            field="autoreplies",
        )
    replies: dict[str, str] = {}
    for language, text in value.items():
        name = f"autoreplies.{language}"
        _language(language, name)
        if not isinstance(text, str):
            raise ValidationFailed(
                f"{name} must be a string.", code=ErrorCode.WRONG_TYPE, field=name
            )
        text = text.strip()
        if not text:
            raise ValidationFailed(f"{name} must not be empty.", field=name, reason="empty")
        if len(text) > AUTOREPLY_MAX_CHARS:
            raise ValidationFailed(
                f"{name} is longer than {AUTOREPLY_MAX_CHARS} characters.",
                field=name,
                reason="too_long",
            )
        unknown = sorted({p for p in _BRACES.findall(text) if p != PLACEHOLDER})
        if unknown:
            raise ValidationFailed(
                f"{name} uses {', '.join(unknown)}; the only placeholder is {PLACEHOLDER}.",
                field=name,
                reason="unknown_placeholder",
                unknown=unknown,
            )
        if language.lower() in {key.lower() for key in replies}:
            raise ValidationFailed(
                f"{name}: the language is given twice.", field=name, reason="duplicate"
            )
        replies[language] = text
    return replies


def _stale(what: str, current: int | None) -> Conflict:
    return Conflict(
        f"Someone else saved {what} after you loaded it. Reload it and edit again.",
        code=ErrorCode.STALE_VERSION,
        field="version",
        current_version=current,
    )


def _closed_resolution(
    resolution_id: int | None, *, query_type: QueryType | None, refer_when_open: bool
) -> ResolutionReason | None:
    """The resolution for conversations closed out of hours: required when they are closed
    (refer_when_open off) as soon as reasons exist, and valid for the scope's type (the
    same rule as an operator's close, routing.services.resolution_check)."""
    return resolution_check(
        query_type_id=query_type.pk if query_type else None,
        resolution_id=resolution_id,
        required=not refer_when_open,
        field="closed_resolution_id",
    )


# --- schedules ------------------------------------------------------------------------------------
def schedule_save(
    *,
    actor: AbstractBaseUser | None,
    query_type_code: str | None,
    version: int,
    time_zone: str,
    weekly: object,
    refer_when_open: bool = True,
    closed_resolution_id: int | None = None,
    default_language: str = "en",
    autoreplies: object = None,
) -> dict[str, Any]:
    """Create or replace a scope's schedule (global, or a query type's override): time zone,
    weekly intervals, options and autoreplies, all at once.

    ``version`` is the one the caller loaded (0 to create).  Raises PermissionDenied,
    NotFound (query type), ValidationFailed (``invalid_value`` with ``data.reason``:
    unknown_time_zone, empty, end_before_start, overlap, too_long, bad_time…;
    ``resolution_required``) and Conflict ``stale_version`` — nothing is saved then.
    """
    hours_access(actor)
    query_type = query_type_by_code(query_type_code)
    logic.time_zone_check(time_zone)
    spans = weekly_parse(weekly)
    replies = autoreplies_parse(autoreplies if autoreplies is not None else {})
    default_language = _language(default_language, "default_language")
    resolution = _closed_resolution(
        closed_resolution_id, query_type=query_type, refer_when_open=refer_when_open
    )
    try:
        with transaction.atomic():
            schedule = Schedule.objects.select_for_update().filter(query_type=query_type).first()
            if schedule is None:
                if version != 0:
                    raise _stale("these opening hours", None)
                schedule = Schedule(query_type=query_type, version=0)
            elif schedule.version != version:
                raise _stale("these opening hours", schedule.version)
            schedule.time_zone = time_zone
            schedule.refer_when_open = refer_when_open
            schedule.closed_resolution = resolution
            schedule.default_language = default_language
            schedule.version += 1
            schedule.updated_by = actor
            with transaction.atomic():  # a concurrent first save hits the constraint
                schedule.save()
            schedule.weekly.all().delete()
            WeeklyInterval.objects.bulk_create(
                WeeklyInterval(
                    schedule=schedule,
                    weekday=weekday,
                    start=span.start,
                    end=span.end,
                    crosses_midnight=span.crosses_midnight,
                )
                for weekday, span in sorted(spans, key=lambda item: (item[0], item[1].start))
            )
            schedule.autoreplies.all().delete()
            Autoreply.objects.bulk_create(
                Autoreply(schedule=schedule, language=language, text=text)
                for language, text in replies.items()
            )
    except IntegrityError:
        raise _stale("these opening hours", None) from None
    logger.info("opening hours of %s saved (version %s)", schedule, schedule.version)
    saved = schedule_for_scope(query_type=query_type)
    assert saved is not None
    return schedule_dict(saved)


def schedule_delete(
    *, actor: AbstractBaseUser | None, query_type_code: str | None, version: int
) -> None:
    """Remove a scope's schedule with its special days (a type then follows the global
    hours; without a global schedule the service is always open).  Raises NotFound and
    Conflict ``stale_version``."""
    hours_access(actor)
    query_type = query_type_by_code(query_type_code)
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().filter(query_type=query_type).first()
        if schedule is None:
            schedule_require(query_type=query_type)  # raises NotFound
            return
        if schedule.version != version:
            raise _stale("these opening hours", schedule.version)
        schedule.delete()


# --- special days ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Day:
    day: date
    closed: bool
    intervals: list[dict[str, Any]]
    recurring: bool
    label: str


def special_day_parse(
    *, day: object, closed: object, intervals: object, recurring_yearly: object, label: object
) -> _Day:
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            day = None
    if not isinstance(day, date):
        raise ValidationFailed(
            "Field 'date' must be a date as YYYY-MM-DD.", field="date", reason="bad_date"
        )
    closed = _bool(closed, "closed")
    recurring = _bool(recurring_yearly, "recurring_yearly")
    if not isinstance(label, str) or len(label) > 120:
        raise ValidationFailed(
            "Field 'label' must be a string of at most 120 characters.", field="label"
        )
    spans = day_intervals_parse(intervals if intervals is not None else [])
    if closed and spans:
        raise ValidationFailed(
            "A closed special day has no intervals; set closed to false for special hours.",
            field="intervals",
            reason="closed_with_intervals",
        )
    if not closed and not spans:
        raise ValidationFailed(
            "A special day that is not closed needs at least one interval.",
            field="intervals",
            reason="empty",
        )
    stored = [
        {
            "start": f"{s.start:%H:%M}",
            "end": f"{s.end:%H:%M}",
            "crosses_midnight": s.crosses_midnight,
        }
        for s in sorted(spans, key=lambda s: s.start)
    ]
    return _Day(day, closed, stored, recurring, label.strip())


def _same_date_check(schedule: Schedule, parsed: _Day, *, exclude_id: int | None) -> None:
    """One special day per date, and one recurring day per month and day (a one-off day
    may override a recurring one in its year)."""
    others = SpecialDay.objects.filter(schedule=schedule).exclude(pk=exclude_id)
    clash = others.filter(date=parsed.day).first()
    if clash is None and parsed.recurring:
        clash = others.filter(
            recurring_yearly=True, date__month=parsed.day.month, date__day=parsed.day.day
        ).first()
    if clash is not None:
        raise Conflict(
            f"A special day on {clash.date.isoformat()} ({clash.label or 'no label'}) "
            "already covers this date.",
            field="date",
            special_day_id=clash.pk,
        )


def special_day_create(
    *,
    actor: AbstractBaseUser | None,
    query_type_code: str | None,
    day: object,
    closed: object = True,
    intervals: object = None,
    recurring_yearly: object = False,
    label: object = "",
) -> dict[str, Any]:
    """Add a special day to a scope's schedule.  Raises PermissionDenied, NotFound (no
    schedule for the scope), ValidationFailed (date, intervals as for the weekly hours) and
    Conflict (a special day already covers the date)."""
    hours_access(actor)
    parsed = special_day_parse(
        day=day,
        closed=closed,
        intervals=intervals,
        recurring_yearly=recurring_yearly,
        label=label,
    )
    query_type = query_type_by_code(query_type_code)
    with transaction.atomic():
        schedule = schedule_require(query_type=query_type)
        Schedule.objects.select_for_update().filter(pk=schedule.pk).first()
        _same_date_check(schedule, parsed, exclude_id=None)
        created = SpecialDay.objects.create(
            schedule=schedule,
            date=parsed.day,
            closed=parsed.closed,
            intervals=parsed.intervals,
            recurring_yearly=parsed.recurring,
            label=parsed.label,
        )
    return special_day_dict(created)


def _special_day_locked(special_day_id: int) -> SpecialDay:
    day = SpecialDay.objects.select_for_update().filter(pk=special_day_id).first()
    if day is None:
        raise NotFound(
            f"No special day with id {special_day_id}.",
            field="special_day_id",
            special_day_id=special_day_id,
        )
    return day


def special_day_update(
    *,
    actor: AbstractBaseUser | None,
    special_day_id: int,
    version: int,
    day: object,
    closed: object = True,
    intervals: object = None,
    recurring_yearly: object = False,
    label: object = "",
) -> dict[str, Any]:
    """Replace a special day.  Raises as ``special_day_create``, plus Conflict
    ``stale_version`` when someone else saved it after ``version`` was loaded."""
    hours_access(actor)
    parsed = special_day_parse(
        day=day,
        closed=closed,
        intervals=intervals,
        recurring_yearly=recurring_yearly,
        label=label,
    )
    with transaction.atomic():
        Schedule.objects.select_for_update().filter(special_days=special_day_id).first()
        row = _special_day_locked(special_day_id)
        if row.version != version:
            raise _stale("this special day", row.version)
        _same_date_check(row.schedule, parsed, exclude_id=row.pk)
        row.date = parsed.day
        row.closed = parsed.closed
        row.intervals = parsed.intervals
        row.recurring_yearly = parsed.recurring
        row.label = parsed.label
        row.source = "manual"
        row.version += 1
        row.save()
    return special_day_dict(row)


def special_day_delete(*, actor: AbstractBaseUser | None, special_day_id: int) -> None:
    """Remove a special day.  Raises PermissionDenied and NotFound."""
    hours_access(actor)
    with transaction.atomic():
        _special_day_locked(special_day_id).delete()


def holidays_import(
    *,
    actor: AbstractBaseUser | None,
    query_type_code: str | None,
    country: str,
    year: int,
    subdivision: str | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """Add a country's (and optionally a region's) public holidays of a year as closed
    one-off special days, named by the ``holidays`` package.  Dates that already have a
    special day are left alone and reported as skipped, so the import can be repeated.

    Raises PermissionDenied, NotFound (no schedule for the scope) and ValidationFailed
    (unknown country or subdivision, year outside 1900-2200).
    """
    hours_access(actor)
    query_type = query_type_by_code(query_type_code)
    lookup = holidays_lookup(country=country, year=year, subdivision=subdivision, language=language)
    source = lookup.source
    created: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    with transaction.atomic():
        schedule = schedule_require(query_type=query_type)
        Schedule.objects.select_for_update().filter(pk=schedule.pk).first()
        taken = special_day_dates_in_year(schedule_id=schedule.pk, year=year)
        for day, name in lookup.days:
            if day in taken:
                skipped.append({"date": day.isoformat(), "label": name})
                continue
            row = SpecialDay.objects.create(
                schedule=schedule, date=day, closed=True, label=name, source=source
            )
            created.append(special_day_dict(row))
    return {"created": created, "skipped": skipped, "source": source}


# --- out of hours ---------------------------------------------------------------------------------
def _autoreply_text(schedule: Schedule, language: str | None) -> tuple[str, str] | None:
    """The reply for the customer's language (exact, then its base language), else the
    schedule's default language, else any; with the language used.  None: none is set."""
    replies = {reply.language.lower(): reply for reply in schedule.autoreplies.all()}
    if not replies:
        return None
    wanted = []
    if language:
        wanted += [language.lower(), language.lower().split("-")[0]]
    wanted += [schedule.default_language.lower(), schedule.default_language.lower().split("-")[0]]
    for key in wanted:
        if key in replies:
            return replies[key].text, replies[key].language
    first = sorted(replies)[0]
    return replies[first].text, replies[first].language


def opening_text(
    moment: datetime | None, *, language: str, time_zone: str | None, schedule_time_zone: str
) -> str:
    """``{next_opening}``: the weekday, date and time of the opening in the customer's time
    zone when known (else the schedule's, named), in the reply's language."""
    if moment is None:
        with translation.override(language):
            return translation.gettext("when the service reopens")
    zone = time_zone or schedule_time_zone
    local = moment.astimezone(ZoneInfo(zone))
    with translation.override(language):
        weekday = str(WEEKDAY_NAMES[local.weekday()])
        day = formats.date_format(local, "DATE_FORMAT")
    text = f"{weekday} {day}, {local:%H:%M}"
    return text if time_zone else f"{text} ({zone})"


def _customer_time_zone(time_zone: str | None) -> str | None:
    if not time_zone:
        return None
    try:
        return logic.time_zone_check(time_zone)
    except ValidationFailed:
        return None  # a browser's odd value: fall back to the schedule's zone


def out_of_hours_handle(
    *,
    conversation: Conversation,
    at: datetime | None = None,
    language: str | None = None,
    time_zone: str | None = None,
) -> OutOfHoursRecord | None:
    """A conversation (row locked by the caller) waits while its service is closed: tell
    the customer when it opens, once per conversation per closed period, then hold it for
    the opening (``refer_when_open``) or close it with the configured resolution.

    Does nothing (no query) for a conversation that is not waiting (assigned, closed, or
    its type menu pending), nor when the service is open.  The autoreply is skipped when
    this customer was already told in this closed period (a second conversation, with
    refer_when_open off).  Idempotent: the record is unique per conversation and period,
    so a second call — another process, another message — does nothing more.  Emits
    ``chat.message_created`` (the autoreply) and ``chat.conversation_closed``.
    """
    from chat.models import ConversationStatus
    from chat.services import conversation_close_by_hub, system_message_send

    if conversation.status != ConversationStatus.QUEUED:
        return None
    if conversation.query_type_id is None and conversation.type_menu_asked:
        return None
    at = at or timezone.now()
    schedule = schedule_governing(query_type_id=conversation.query_type_id)
    if schedule is None:
        return None
    rules = hours_of(schedule)
    if logic.is_open(rules, at):
        return None
    since = logic.previous_change(rules, at)
    closed_since = since.at if since else _NEVER_OPEN
    if OutOfHoursRecord.objects.filter(
        conversation_id=conversation.pk, closed_since=closed_since
    ).exists():
        record = None
    else:
        opening = logic.next_change(rules, at)
        next_opening = opening.at if opening else None
        refer = schedule.refer_when_open
        record = OutOfHoursRecord(
            conversation_id=conversation.pk,
            customer_id=conversation.customer_id,
            channel=conversation.channel,
            query_type_id=conversation.query_type_id,
            closed_since=closed_since,
            next_opening=next_opening,
            action=OutOfHoursRecord.Action.HELD if refer else OutOfHoursRecord.Action.CLOSED,
        )
        try:
            with transaction.atomic():
                record.save()
        except IntegrityError:  # another process handled this conversation and period
            return None
        told = OutOfHoursRecord.objects.filter(
            customer_id=conversation.customer_id,
            channel=conversation.channel,
            closed_since=closed_since,
            message_id__isnull=False,
        ).exists()
        reply = None if told else _autoreply_text(schedule, language)
        if reply is not None:
            text, used = reply
            filled = text.replace(
                PLACEHOLDER,
                opening_text(
                    next_opening,
                    language=used,
                    time_zone=_customer_time_zone(time_zone),
                    schedule_time_zone=schedule.time_zone,
                ),
            )
            message = system_message_send(conversation=conversation, text=filled)
            record.message_id = message["id"]
            record.save(update_fields=["message_id"])
        logger.info(
            "out of hours: conversation %s %s (closed since %s)",
            conversation.pk,
            record.action,
            closed_since.isoformat(),
        )
    if not schedule.refer_when_open:
        # Closed also when a reopened conversation comes back in the same period.
        conversation_close_by_hub(conversation=conversation, resolution=schedule.closed_resolution)
    return record
