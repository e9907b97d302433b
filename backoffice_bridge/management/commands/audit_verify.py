"""``python manage.py audit_verify``: walk the back-office audit chain and report the first
broken or missing link (exit status 1), or how many entries hold (0)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backoffice_bridge.audit import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the hash chain of the back-office audit log."

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify()
        if not report.ok:
            raise CommandError(
                f"audit chain broken at entry {report.sequence} ({report.reason}): "
                f"{report.problem}; {report.checked} entries before it hold",
                returncode=1,
            )
        self.stdout.write(f"audit chain intact: {report.checked} entries")
