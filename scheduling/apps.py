"""Scheduling: the service's opening hours, special days and the out-of-hours autoreply."""

import os

from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from hub.scheduler import job_register

        # The opening and closing transitions (scheduling.transitions): held conversations
        # are routed at most this long after the opening.
        job_register(
            "scheduling.transitions",
            every=float(os.environ.get("HUB_SCHEDULING_TICK_SECONDS") or 30.0),
            func="scheduling.transitions.hours_transitions",
        )
