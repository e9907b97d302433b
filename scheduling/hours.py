"""Scheduling domain logic, pure: is the service open at an instant, when does that change,
and which rule said so.  No ORM and no clock: a schedule is a frozen ``Hours`` value and
every function takes the instant it is asked about, so the time rules are tested as plain
functions (DST, midnight, special days, minute boundaries).

Rules, in order of precedence for a local date (in the schedule's time zone):

1. a one-off special day for that date (closed, or its own intervals);
2. a special day recurring yearly on that month and day (a 29 February one applies in leap
   years only);
3. the weekly intervals of that weekday.

A rule governs the intervals that *start* on its date: an interval crossing midnight on
Monday keeps the service open into Tuesday even when Tuesday is a closed holiday.
Intervals are half-open, ``[start, end)``: 09:00-18:00 is open at 09:00:00 and at
17:59:59.999 and closed at 18:00:00.

Local times are turned into instants with the convention of ``java.time`` (Python's
``fold=0``): a time that does not exist (the clocks jump forward) is moved later by the
length of the jump, so 02:30 on Madrid's spring-forward day is 03:30 CEST and Santiago's
missing midnight is 01:00; a time that occurs twice (the clocks go back) is its first
occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from hub.exceptions import ValidationFailed

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# The en dash of "09:00\u201318:00" (the labels customers and coordinators read).
DASH = "\u2013"
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
# How far ahead (and back) a change is looked for; a schedule closed for longer has none.
HORIZON_DAYS = 400
_WINDOWS = (3, 16, 62, HORIZON_DAYS)
_TIME = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class Span:
    """One opening interval of a day, ``[start, end)``; ``crosses_midnight``: ``end`` is on
    the next day (22:00-02:00; 18:00-00:00 runs to midnight; 00:00-00:00 is 24 hours)."""

    start: time
    end: time
    crosses_midnight: bool = False

    @property
    def minutes(self) -> tuple[int, int]:
        """Start and end in minutes from the start of its day (end may exceed 1440)."""
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        return start, end + (MINUTES_PER_DAY if self.crosses_midnight else 0)

    def label(self) -> str:
        end = "24:00" if self.crosses_midnight and self.end == time(0) else f"{self.end:%H:%M}"
        return f"{self.start:%H:%M}{DASH}{end}"


@dataclass(frozen=True)
class SpecialRule:
    """A special day: closed (no spans) or its own spans instead of the weekday's."""

    day: date
    spans: tuple[Span, ...] = ()
    label: str = ""
    recurring: bool = False

    @property
    def closed(self) -> bool:
        return not self.spans


@dataclass(frozen=True)
class Hours:
    """A schedule as the time logic sees it.  ``weekly`` maps 0 (Monday) … 6 (Sunday)."""

    time_zone: str
    weekly: Mapping[int, tuple[Span, ...]] = field(default_factory=dict)
    special: Mapping[date, SpecialRule] = field(default_factory=dict)
    recurring: Mapping[tuple[int, int], SpecialRule] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class AppliedRule:
    """Which rule decided a date: ``weekly`` (``weekday``), ``special_day`` (one-off) or
    ``recurring_special_day``; ``spans`` are that date's intervals (empty: closed)."""

    kind: str
    day: date
    spans: tuple[Span, ...]
    label: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "date": self.day.isoformat(),
            "weekday": WEEKDAYS[self.day.weekday()],
            "label": self.label,
            "closed": not self.spans,
            "intervals": [span.label() for span in self.spans],
        }


@dataclass(frozen=True)
class Piece:
    """One span of one date, as instants (UTC), with the rule it came from."""

    start: datetime
    end: datetime
    rule: AppliedRule


@dataclass(frozen=True)
class Change:
    """The next (or last) instant the service opens (``opens``) or closes."""

    at: datetime
    opens: bool


@dataclass(frozen=True)
class Preview:
    """What happens at an instant: open or closed, until when or the next opening, the rule."""

    at: datetime
    open: bool
    until: datetime | None
    next_opening: datetime | None
    rule: AppliedRule
    summary: str

    def as_dict(self) -> dict[str, object]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "at": iso(self.at),
            "open": self.open,
            "until": iso(self.until),
            "next_opening": iso(self.next_opening),
            "rule": self.rule.as_dict(),
            "summary": self.summary,
        }


# --- rules -----------------------------------------------------------------------------------
def rule_for(hours: Hours, day: date) -> AppliedRule:
    """The rule that governs a local date (one-off special day, recurring one, weekday)."""
    special = hours.special.get(day)
    if special is not None:
        return AppliedRule("special_day", day, special.spans, special.label)
    recurring = hours.recurring.get((day.month, day.day))
    if recurring is not None:
        return AppliedRule("recurring_special_day", day, recurring.spans, recurring.label)
    return AppliedRule("weekly", day, tuple(hours.weekly.get(day.weekday(), ())))


def _instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A local date and time as a UTC instant (fold=0: see the module docstring)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _pieces(hours: Hours, first: date, last: date) -> list[Piece]:
    tz = hours.tz
    pieces = []
    day = first
    while day <= last:
        rule = rule_for(hours, day)
        for span in rule.spans:
            start = _instant(day, span.start, tz)
            end_day = day + timedelta(days=1) if span.crosses_midnight else day
            end = _instant(end_day, span.end, tz)
            if end > start:
                pieces.append(Piece(start, end, rule))
        day += timedelta(days=1)
    return sorted(pieces, key=lambda piece: piece.start)


def _merged(pieces: Iterable[Piece]) -> list[tuple[datetime, datetime]]:
    """Pieces as disjoint open periods: overlapping or touching ones join (a span to 24:00
    followed by one from 00:00 is one period, with no closing at midnight)."""
    merged: list[tuple[datetime, datetime]] = []
    for piece in pieces:
        if merged and piece.start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], piece.end))
        else:
            merged.append((piece.start, piece.end))
    return merged


def _local_day(hours: Hours, at: datetime) -> date:
    if at.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return at.astimezone(hours.tz).date()


def _piece_at(hours: Hours, at: datetime) -> Piece | None:
    day = _local_day(hours, at)
    # A span starts on its own date and ends at most a day (plus a DST hour) later.
    for piece in _pieces(hours, day - timedelta(days=1), day):
        if piece.start <= at < piece.end:
            return piece
    return None


def is_open(hours: Hours, at: datetime) -> bool:
    """Whether the service is open at the instant ``at``."""
    return _piece_at(hours, at) is not None


def next_change(hours: Hours, at: datetime) -> Change | None:
    """The first instant after ``at`` at which the service opens or closes (None: no change
    within ``HORIZON_DAYS``, e.g. open around the clock, or no hours at all)."""
    day = _local_day(hours, at)
    tz = hours.tz
    for ahead in _WINDOWS:
        last = day + timedelta(days=ahead)
        # Periods ending before the window's last date starts cannot be extended by a
        # date outside it.
        reliable = _instant(last, time(0), tz)
        for start, end in _merged(_pieces(hours, day - timedelta(days=1), last)):
            if end <= at:
                continue
            if start > at:
                if start < reliable:
                    return Change(start, opens=True)
                break
            if end < reliable:
                return Change(end, opens=False)
            break
    return None


def previous_change(hours: Hours, at: datetime) -> Change | None:
    """The last instant at or before ``at`` at which the service opened or closed: the
    start of the open or closed period ``at`` is in (None: none within ``HORIZON_DAYS``)."""
    day = _local_day(hours, at)
    tz = hours.tz
    for back in _WINDOWS:
        first = day - timedelta(days=back)
        # A date before the window can reach at most into its second date.
        reliable = _instant(first + timedelta(days=2), time(0), tz)
        found: Change | None = None
        for start, end in _merged(_pieces(hours, first, day)):
            if start > at:
                break
            found = Change(start, opens=True) if at < end else Change(end, opens=False)
        if found is not None and found.at > reliable:
            return found
    return None


def preview(hours: Hours, at: datetime) -> Preview:
    """What happens at ``at``: "open now until 18:00" or "closed; next opening Monday
    09:00", with the rule that applied (for a closed instant, the rule of its local date)."""
    tz = hours.tz
    local = at.astimezone(tz)
    piece = _piece_at(hours, at)
    change = next_change(hours, at)
    if piece is not None:
        until = change.at.astimezone(tz) if change else None
        text = f"open now until {describe(until, local)}" if until else "open around the clock"
        return Preview(local, True, until, None, piece.rule, text)
    opening = change.at.astimezone(tz) if change else None
    text = f"closed; next opening {describe(opening, local)}" if opening else "closed"
    return Preview(local, False, None, opening, rule_for(hours, local.date()), text)


def describe(moment: datetime, reference: datetime) -> str:
    """``18:00`` the same day, ``Monday 09:00`` within a week, else ``Monday 5 January 2026
    09:00`` (English: previews are for coordinators; autoreplies are localised)."""
    if moment.date() == reference.date():
        return f"{moment:%H:%M}"
    weekday = WEEKDAYS[moment.weekday()]
    if timedelta(0) < moment - reference < timedelta(days=6):
        return f"{weekday} {moment:%H:%M}"
    return f"{weekday} {moment.day} {moment:%B %Y %H:%M}"


def spans_on(hours: Hours, day: date) -> tuple[Span, ...]:
    """The intervals that start on a local date (its rule's)."""
    return rule_for(hours, day).spans


# --- validation ------------------------------------------------------------------------------
def time_zone_check(name: str, *, field_name: str = "time_zone") -> str:
    """A valid IANA time zone name, or ValidationFailed (reason ``unknown_time_zone``)."""
    if not isinstance(name, str) or not name or name not in _zone_names():
        raise ValidationFailed(
            f"'{name}' is not a known IANA time zone (e.g. Europe/Madrid).",
            field=field_name,
            reason="unknown_time_zone",
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"'{name}' is not a known IANA time zone (e.g. Europe/Madrid).",
            field=field_name,
            reason="unknown_time_zone",
        ) from None
    return name


_zones: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _zones
    if _zones is None:
        _zones = frozenset(available_timezones())
    return _zones


def time_parse(value: object, *, field_name: str, end: bool = False) -> tuple[time, bool]:
    """``"HH:MM"`` as a time; an end may be ``"24:00"`` (midnight at the end of the day,
    returned as 00:00 with ``True``: crossing midnight)."""
    if end and value == "24:00":
        return time(0), True
    if not isinstance(value, str) or not _TIME.match(value):
        raise ValidationFailed(
            f"{field_name} must be a time as HH:MM (00:00 to 23:59"
            + (", or 24:00 for the end of the day)." if end else ")."),
            field=field_name,
            reason="bad_time",
        )
    hour, minute = value.split(":")
    return time(int(hour), int(minute)), False


def span_check(span: Span, *, field_name: str) -> Span:
    """One interval on its own: not empty, and ending after it starts unless it is marked
    as crossing midnight (then it must end on the next day at or before its start time)."""
    start, end = span.start, span.end
    if span.crosses_midnight:
        if end > start:
            raise ValidationFailed(
                f"{field_name}: {start:%H:%M}-{end:%H:%M} is marked as crossing midnight but "
                "ends after it starts on the same day; it would last more than 24 hours.",
                field=field_name,
                reason="too_long",
            )
        return span
    if end == start:
        raise ValidationFailed(
            f"{field_name}: {start:%H:%M}-{end:%H:%M} is empty.",
            field=field_name,
            reason="empty",
        )
    if end < start:
        raise ValidationFailed(
            f"{field_name}: {start:%H:%M}-{end:%H:%M} ends before it starts; set "
            "crosses_midnight to run past midnight.",
            field=field_name,
            reason="end_before_start",
        )
    return span


def _overlap_error(a: str, b: str, label_a: str, label_b: str) -> ValidationFailed:
    return ValidationFailed(
        f"{b} ({label_b}) overlaps {a} ({label_a}).",
        field=b,
        reason="overlap",
        overlaps=a,
    )


def weekly_check(spans: list[tuple[int, Span]], *, field_name: str = "weekly") -> None:
    """Each interval valid, and none overlapping another on the weekly clock (a Sunday
    interval crossing midnight runs into Monday).  Touching intervals are allowed."""
    ranges = []
    for index, (weekday, span) in enumerate(spans):
        name = f"{field_name}[{index}]"
        if not 0 <= weekday <= 6:
            raise ValidationFailed(
                f"{name}.weekday must be 0 (Monday) to 6 (Sunday).",
                field=f"{name}.weekday",
                reason="bad_weekday",
            )
        span_check(span, field_name=name)
        start, end = span.minutes
        offset = weekday * MINUTES_PER_DAY
        label = f"{WEEKDAYS[weekday]} {span.label()}"
        ranges.append((offset + start, offset + end, name, label))
        if offset + end > MINUTES_PER_WEEK:  # Sunday into Monday
            ranges.append(
                (offset + start - MINUTES_PER_WEEK, offset + end - MINUTES_PER_WEEK, name, label)
            )
    _ranges_check(ranges)


def day_spans_check(spans: list[Span], *, field_name: str = "intervals") -> None:
    """A special day's intervals: each valid, none overlapping another."""
    ranges = []
    for index, span in enumerate(spans):
        name = f"{field_name}[{index}]"
        span_check(span, field_name=name)
        ranges.append((*span.minutes, name, span.label()))
    _ranges_check(ranges)


def _ranges_check(ranges: list[tuple[int, int, str, str]]) -> None:
    ranges.sort()
    for (_, end_a, name_a, label_a), (start_b, _, name_b, label_b) in pairwise(ranges):
        if start_b < end_a and name_a != name_b:
            first, second = sorted([(name_a, label_a), (name_b, label_b)], key=_index_of)
            raise _overlap_error(first[0], second[0], first[1], second[1])


def _index_of(item: tuple[str, str]) -> int:
    match = re.search(r"\[(\d+)\]$", item[0])
    return int(match.group(1)) if match else 0
