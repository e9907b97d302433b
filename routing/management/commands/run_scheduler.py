"""Management command (transport): run the hub's periodic jobs (hub.scheduler).

    manage.py run_scheduler              # until SIGTERM / SIGINT (Procfile: scheduler)
    manage.py run_scheduler --once       # every job once, then exit (cron, checks)
    manage.py run_scheduler --job routing.tick --once

Several may run at once (two hosts for redundancy): every job locks what it changes with
``SKIP LOCKED``, so nothing is done twice.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.scheduler import Scheduler, jobs_registered


class Command(BaseCommand):
    help = "Run the hub's periodic jobs (routing tick, …) until SIGTERM; --once runs each once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Run every job once, then exit (1 if one failed)."
        )
        parser.add_argument(
            "--job", action="append", dest="jobs", metavar="NAME", help="Only this job (repeat)."
        )

    def handle(self, *args: object, **options: object) -> None:
        jobs = jobs_registered()
        wanted = options.get("jobs")
        if wanted:
            unknown = set(wanted) - {job.name for job in jobs}  # type: ignore[arg-type]
            if unknown:
                names = ", ".join(job.name for job in jobs)
                raise CommandError(f"unknown job(s) {', '.join(sorted(unknown))}; known: {names}")
            jobs = [job for job in jobs if job.name in wanted]  # type: ignore[operator]
        scheduler = Scheduler(jobs)
        if options.get("once"):
            results = scheduler.run_all_sync()
            for name, ok in results.items():
                self.stdout.write(f"{name}: {'ok' if ok else 'failed'}")
            failed = [name for name, ok in results.items() if not ok]
            if failed:
                raise CommandError(f"failed: {', '.join(failed)}")
            return
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        scheduler.serve_sync(stop)
