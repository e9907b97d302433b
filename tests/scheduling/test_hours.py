"""scheduling.hours: the pure time rules — minute boundaries, intervals crossing midnight,
special days over weekdays, DST in Europe/Madrid and America/Santiago — and the checks
that refuse bad intervals and time zones.  No database, no clock: instants are passed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.exceptions import ValidationFailed
from scheduling.hours import (
    Hours,
    Span,
    SpecialRule,
    day_spans_check,
    is_open,
    next_change,
    preview,
    previous_change,
    span_check,
    time_zone_check,
    weekly_check,
)

MADRID = ZoneInfo("Europe/Madrid")
SANTIAGO = ZoneInfo("America/Santiago")


def t(text: str) -> time:
    return time.fromisoformat(text)


def span(start: str, end: str, crosses: bool = False) -> Span:
    return Span(t(start), t(end), crosses)


OFFICE = (span("09:00", "13:00"), span("14:00", "18:00"))


def office(zone: str = "Europe/Madrid", **extra: object) -> Hours:
    """Monday to Friday 09:00-13:00 and 14:00-18:00."""
    return Hours(zone, weekly={d: OFFICE for d in range(5)}, **extra)  # type: ignore[arg-type]


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, tz=MADRID) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=tz)


# --- minute boundaries ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hh", "mm", "ss", "expected"),
    [
        (8, 59, 59, False),
        (9, 0, 0, True),
        (12, 59, 59, True),
        (13, 0, 0, False),
        (13, 59, 59, False),
        (14, 0, 0, True),
        (17, 59, 59, True),
        (18, 0, 0, False),
    ],
)
def test_minute_boundaries_are_half_open(hh, mm, ss, expected):
    # Monday 5 January 2026
    assert is_open(office(), local(2026, 1, 5, hh, mm, ss)) is expected


def test_next_change_within_a_day_and_over_the_weekend():
    hours = office()
    change = next_change(hours, local(2026, 1, 5, 10))
    assert (change.at, change.opens) == (local(2026, 1, 5, 13), False)
    change = next_change(hours, local(2026, 1, 5, 13))
    assert (change.at, change.opens) == (local(2026, 1, 5, 14), True)
    # Friday 18:00 (closing instant itself is closed) -> Monday 09:00
    change = next_change(hours, local(2026, 1, 9, 18))
    assert (change.at, change.opens) == (local(2026, 1, 12, 9), True)
    assert next_change(hours, local(2026, 1, 9, 17, 59, 59)).at == local(2026, 1, 9, 18)


def test_previous_change_is_the_start_of_the_current_period():
    hours = office()
    assert previous_change(hours, local(2026, 1, 5, 10)).at == local(2026, 1, 5, 9)
    assert previous_change(hours, local(2026, 1, 5, 9)).opens is True
    closed = previous_change(hours, local(2026, 1, 10, 12))  # Saturday
    assert (closed.at, closed.opens) == (local(2026, 1, 9, 18), False)


def test_no_hours_never_open_and_around_the_clock_never_changes():
    closed = Hours("UTC")
    assert not is_open(closed, local(2026, 1, 5, 10))
    assert next_change(closed, local(2026, 1, 5, 10)) is None
    assert previous_change(closed, local(2026, 1, 5, 10)) is None
    always = Hours("UTC", weekly={d: (span("00:00", "00:00", True),) for d in range(7)})
    assert is_open(always, local(2026, 1, 5, 10))
    assert next_change(always, local(2026, 1, 5, 10)) is None
    assert preview(always, local(2026, 1, 5, 10)).summary == "open around the clock"


# --- midnight -----------------------------------------------------------------------------
def test_interval_crossing_midnight():
    # Friday 22:00 -> Saturday 02:00
    hours = Hours("Europe/Madrid", weekly={4: (span("22:00", "02:00", True),)})
    assert not is_open(hours, local(2026, 1, 9, 21, 59, 59))
    assert is_open(hours, local(2026, 1, 9, 22))
    assert is_open(hours, local(2026, 1, 10, 0, 0))
    assert is_open(hours, local(2026, 1, 10, 1, 59, 59))
    assert not is_open(hours, local(2026, 1, 10, 2))
    assert next_change(hours, local(2026, 1, 9, 23)).at == local(2026, 1, 10, 2)
    # The rule that applied is Friday's, even after midnight.
    result = preview(hours, local(2026, 1, 10, 1))
    assert result.open and result.rule.day == date(2026, 1, 9)
    assert result.summary == "open now until 02:00"


def test_a_closed_holiday_does_not_cut_the_previous_nights_interval():
    hours = Hours(
        "Europe/Madrid",
        weekly={4: (span("22:00", "02:00", True),), 5: (span("10:00", "12:00"),)},
        special={date(2026, 1, 10): SpecialRule(date(2026, 1, 10), (), "Holiday")},
    )
    assert is_open(hours, local(2026, 1, 10, 1))
    assert not is_open(hours, local(2026, 1, 10, 11))


def test_until_midnight_then_from_midnight_is_one_period():
    hours = Hours(
        "Europe/Madrid",
        weekly={0: (span("18:00", "00:00", True),), 1: (span("00:00", "06:00"),)},
    )
    change = next_change(hours, local(2026, 1, 5, 20))
    assert (change.at, change.opens) == (local(2026, 1, 6, 6), False)
    assert previous_change(hours, local(2026, 1, 6, 3)).at == local(2026, 1, 5, 18)


# --- special days -------------------------------------------------------------------------
def test_special_day_overrides_the_weekday_and_preview_says_which_rule():
    christmas = SpecialRule(date(2020, 12, 25), (), "Christmas", recurring=True)
    eve = SpecialRule(date(2026, 12, 24), (span("09:00", "14:00"),), "Christmas Eve")
    hours = office(special={eve.day: eve}, recurring={(12, 25): christmas})
    at = local(2026, 12, 24, 17, 30)  # a Thursday: the weekday would be open
    result = preview(hours, at)
    assert not result.open
    assert result.rule.kind == "special_day" and result.rule.label == "Christmas Eve"
    # 25th (recurring, Friday) closed, then the weekend: Monday 28th 09:00
    assert result.next_opening == local(2026, 12, 28, 9)
    assert result.summary == "closed; next opening Monday 09:00"
    assert preview(hours, local(2026, 12, 24, 13, 59)).summary == "open now until 14:00"
    rule = preview(hours, local(2027, 12, 25, 12)).rule  # recurring, another year
    assert (rule.kind, rule.label) == ("recurring_special_day", "Christmas")


def test_one_off_day_wins_over_recurring_one():
    recurring = SpecialRule(date(2020, 12, 24), (), "Closed every Christmas Eve", recurring=True)
    one_off = SpecialRule(date(2026, 12, 24), (span("10:00", "12:00"),), "Open this year")
    hours = office(special={one_off.day: one_off}, recurring={(12, 24): recurring})
    assert is_open(hours, local(2026, 12, 24, 11))
    assert not is_open(hours, local(2027, 12, 24, 11))  # a Friday, recurring closed


def test_preview_far_ahead_names_the_date():
    hours = Hours("Europe/Madrid", weekly={0: (span("09:00", "10:00"),)}, special={})
    closed_month = {
        date(2026, 1, 5) + timedelta(weeks=w): SpecialRule(date(2026, 1, 5) + timedelta(weeks=w))
        for w in range(4)
    }
    hours = Hours("Europe/Madrid", weekly=hours.weekly, special=closed_month)
    result = preview(hours, local(2026, 1, 1, 12))
    assert result.next_opening == local(2026, 2, 2, 9)
    assert result.summary == "closed; next opening Monday 2 February 2026 09:00"


# --- daylight saving ----------------------------------------------------------------------------
def test_madrid_spring_forward():
    # Sunday 29 March 2026: 02:00 CET -> 03:00 CEST (01:00 UTC)
    hours = Hours("Europe/Madrid", weekly={6: (span("01:00", "04:00"),)})
    assert next_change(hours, datetime(2026, 3, 29, 0, 30, tzinfo=UTC)).at == datetime(
        2026, 3, 29, 2, 0, tzinfo=UTC
    )  # 01:00 CET to 04:00 CEST is two real hours
    assert is_open(hours, local(2026, 3, 29, 3, 30))
    # An opening inside the gap moves later by the gap (java.time's rule): 02:30 -> 03:30.
    gap = Hours("Europe/Madrid", weekly={6: (span("02:30", "05:00"),)})
    assert not is_open(gap, local(2026, 3, 29, 3, 29))
    assert is_open(gap, local(2026, 3, 29, 3, 30))
    # The Monday after opens at 09:00 CEST = 07:00 UTC (it was 08:00 UTC the week before).
    friday = local(2026, 3, 27, 18)
    assert next_change(office(), friday).at == datetime(2026, 3, 30, 7, tzinfo=UTC)
    assert next_change(office(), local(2026, 3, 20, 18)).at == datetime(2026, 3, 23, 8, tzinfo=UTC)


def test_madrid_fall_back():
    # Sunday 25 October 2026: 03:00 CEST -> 02:00 CET; 01:00-04:00 lasts four real hours.
    hours = Hours("Europe/Madrid", weekly={6: (span("01:00", "04:00"),)})
    opened = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    assert next_change(hours, opened - timedelta(seconds=1)).at == opened
    assert next_change(hours, opened).at == datetime(2026, 10, 25, 3, 0, tzinfo=UTC)
    # Weekday hours keep their local time across the change.
    assert next_change(office(), local(2026, 10, 23, 18)).at == datetime(
        2026, 10, 26, 8, tzinfo=UTC
    )


def test_santiago_midnight_that_does_not_exist():
    # Sunday 6 September 2026: 00:00 -04 -> 01:00 -03; a Sunday opening at 00:00 is 01:00.
    hours = Hours("America/Santiago", weekly={6: (span("00:00", "12:00"),)})
    opening = next_change(hours, datetime(2026, 9, 5, 12, tzinfo=SANTIAGO))
    assert opening.at == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)
    assert opening.at.astimezone(SANTIAGO).hour == 1
    assert next_change(hours, opening.at).at == datetime(2026, 9, 6, 12, tzinfo=SANTIAGO)


def test_santiago_fall_back_hour_counted_once_then_again():
    # Saturday 4 April 2026 24:00 -03 -> 23:00 -04: 22:00 until midnight is three real hours.
    hours = Hours("America/Santiago", weekly={5: (span("22:00", "00:00", True),)})
    start = datetime(2026, 4, 4, 22, tzinfo=SANTIAGO)
    assert start == datetime(2026, 4, 5, 1, tzinfo=UTC)
    closing = next_change(hours, start)
    assert closing.at == datetime(2026, 4, 5, 4, tzinfo=UTC)
    assert closing.at - start == timedelta(hours=3)
    assert is_open(hours, datetime(2026, 4, 5, 3, 30, tzinfo=UTC))  # the repeated 23:30


# --- checks ---------------------------------------------------------------------------------------
def _reason(call) -> tuple[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        call()
    return caught.value.data["reason"], caught.value.data["field"]


def test_empty_interval_and_end_before_start_are_refused():
    assert _reason(lambda: span_check(span("09:00", "09:00"), field_name="w")) == ("empty", "w")
    assert _reason(lambda: span_check(span("18:00", "09:00"), field_name="w")) == (
        "end_before_start",
        "w",
    )
    # The same interval marked as crossing midnight is fine; one longer than a day is not.
    span_check(span("18:00", "09:00", True), field_name="w")
    assert _reason(lambda: span_check(span("09:00", "18:00", True), field_name="w"))[0] == (
        "too_long"
    )


def test_overlapping_intervals_are_refused_touching_ones_are_not():
    weekly_check([(0, span("09:00", "13:00")), (0, span("13:00", "18:00"))])
    reason, field = _reason(
        lambda: weekly_check([(0, span("09:00", "13:00")), (0, span("12:00", "18:00"))])
    )
    assert (reason, field) == ("overlap", "weekly[1]")
    # Monday night into Tuesday morning
    assert _reason(
        lambda: weekly_check([(0, span("22:00", "02:00", True)), (1, span("01:00", "09:00"))])
    ) == ("overlap", "weekly[1]")
    # Sunday night into Monday morning (the week wraps)
    assert _reason(
        lambda: weekly_check([(0, span("01:00", "09:00")), (6, span("23:00", "02:00", True))])
    ) == ("overlap", "weekly[1]")
    assert _reason(lambda: weekly_check([(7, span("09:00", "10:00"))])) == (
        "bad_weekday",
        "weekly[0].weekday",
    )
    assert _reason(lambda: day_spans_check([span("09:00", "12:00"), span("08:00", "10:00")])) == (
        "overlap",
        "intervals[1]",
    )


def test_time_zone_must_be_a_known_iana_name():
    assert time_zone_check("America/Santiago") == "America/Santiago"
    for bad in ("Mars/Olympus", "", "europe/madrid", "../etc/passwd"):
        assert _reason(lambda bad=bad: time_zone_check(bad)) == ("unknown_time_zone", "time_zone")


def test_naive_instants_are_refused():
    with pytest.raises(ValueError):
        is_open(office(), datetime(2026, 1, 5, 10))


# --- properties -----------------------------------------------------------------------------------
_minutes = st.integers(min_value=0, max_value=24 * 60 - 1)


@st.composite
def _weekly(draw) -> Hours:
    weekly: dict[int, tuple[Span, ...]] = {}
    for weekday in draw(st.sets(st.integers(0, 6), max_size=5)):
        a, b = sorted(draw(st.tuples(_minutes, _minutes)))
        if a == b:
            continue
        weekly[weekday] = (Span(time(a // 60, a % 60), time(b // 60, b % 60)),)
    zone = draw(st.sampled_from(["Europe/Madrid", "America/Santiago", "UTC"]))
    return Hours(zone, weekly=weekly)


@settings(max_examples=150, deadline=None)
@given(
    hours=_weekly(),
    at=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
)
def test_state_flips_exactly_at_each_change(hours, at):
    change = next_change(hours, at)
    if change is None:
        assert not hours.weekly
        return
    assert change.at > at
    assert is_open(hours, change.at) is change.opens
    assert is_open(hours, change.at - timedelta(microseconds=1)) is not change.opens
    assert is_open(hours, at) is not change.opens
    last = previous_change(hours, at)
    assert last is not None and last.at <= at
    assert last.opens is is_open(hours, at)
