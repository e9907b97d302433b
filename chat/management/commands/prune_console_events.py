"""Management command: delete console events older than the retention period.

    manage.py prune_console_events --days 30

Run it daily (cron, a scheduled job).  Consoles offline for longer than the retention get a
fresh snapshot instead of a replay when they come back.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser

from chat.services import console_log_prune


class Command(BaseCommand):
    help = "Delete console events older than --days (default 30)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, default=30.0)

    def handle(self, *args: object, **options: object) -> None:
        deleted = console_log_prune(older_than=timedelta(days=float(options["days"])))
        self.stdout.write(f"deleted {deleted} console events")
