"""Management command (transport): import a country's public holidays for a year as closed
special days of a schedule (scheduling.services.holidays_import).

    manage.py holidays_import --country ES --year 2026
    manage.py holidays_import --country ES --subdivision MD --year 2026 --language es
    manage.py holidays_import --country CL --year 2026 --query-type claims
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.exceptions import HubError
from scheduling.services import holidays_import


class Command(BaseCommand):
    help = "Import a country's public holidays for a year as closed special days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--country", required=True, help="ISO 3166 code, e.g. ES, CL, US.")
        parser.add_argument("--year", required=True, type=int)
        parser.add_argument("--subdivision", help="Region, e.g. MD (Madrid) for ES.")
        parser.add_argument("--language", help="Language of the holiday names, e.g. es.")
        parser.add_argument(
            "--query-type", dest="query_type", help="A query type's code (default: global)."
        )

    def handle(self, *args: object, **options: object) -> None:
        try:
            result = holidays_import(
                actor=None,
                query_type_code=options["query_type"],  # type: ignore[arg-type]
                country=options["country"],  # type: ignore[arg-type]
                year=options["year"],  # type: ignore[arg-type]
                subdivision=options["subdivision"],  # type: ignore[arg-type]
                language=options["language"],  # type: ignore[arg-type]
            )
        except HubError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        for day in result["created"]:
            self.stdout.write(f"added   {day['date']}  {day['label']}")
        for day in result["skipped"]:
            self.stdout.write(f"skipped {day['date']}  {day['label']} (a special day exists)")
        self.stdout.write(
            f"{len(result['created'])} holidays added, {len(result['skipped'])} skipped "
            f"({result['source']})."
        )
