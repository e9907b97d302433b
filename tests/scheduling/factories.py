"""Test factories for scheduling: schedules set through the service, as a coordinator would.

Integration tests that go through routing (which asks the real clock) use schedules whose
answer does not depend on the clock: ``ALWAYS_OPEN`` and ``CLOSED`` (no intervals)."""

from __future__ import annotations

from typing import Any

from scheduling.models import Schedule
from scheduling.services import schedule_save

ALWAYS_OPEN = [
    {"weekday": d, "start": "00:00", "end": "00:00", "crosses_midnight": True} for d in range(7)
]
CLOSED: list[dict[str, Any]] = []
OFFICE = [
    {"weekday": d, "start": start, "end": end}
    for d in range(5)
    for start, end in (("09:00", "13:00"), ("14:00", "18:00"))
]
REPLIES = {
    "en": "We are closed. We open {next_opening}.",
    "es": "Estamos cerrados. Abrimos el {next_opening}.",
}


def hours_set(
    weekly: list[dict[str, Any]],
    *,
    query_type: str | None = None,
    time_zone: str = "Europe/Madrid",
    autoreplies: dict[str, str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Create or replace a scope's schedule (whatever its current version)."""
    current = Schedule.objects.filter(query_type__code=query_type).first()
    if query_type is None:
        current = Schedule.objects.filter(query_type__isnull=True).first()
    return schedule_save(
        actor=None,
        query_type_code=query_type,
        version=current.version if current else 0,
        time_zone=time_zone,
        weekly=weekly,
        autoreplies=REPLIES if autoreplies is None else autoreplies,
        **options,
    )
