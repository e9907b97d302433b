"""Management command: create or update a staff user with one role.

manage.py staff_user alice --role Operator [--online] [--capacity 5] [--types payments,claims]
(the password comes from HUB_STAFF_PASSWORD)
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.accounts import staff_user_ensure
from hub.exceptions import HubError
from hub.roles import Role
from routing.services import operator_profile_set, presence_set


class Command(BaseCommand):
    help = "Create or update a staff user (password from the HUB_STAFF_PASSWORD variable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=[r.value for r in Role], default=Role.OPERATOR.value)
        parser.add_argument("--online", action="store_true", help="set presence to online")
        parser.add_argument("--capacity", type=int, default=None)
        parser.add_argument(
            "--types", default=None, help="comma-separated query type codes the user serves"
        )

    def handle(self, *args: object, **options: object) -> None:
        password = os.environ.get("HUB_STAFF_PASSWORD")
        if not password:
            raise CommandError("Set HUB_STAFF_PASSWORD to the new user's password.")
        user = staff_user_ensure(
            username=str(options["username"]), password=password, role=Role(options["role"])
        )
        types = options["types"]
        if options["capacity"] is not None or types is not None:
            try:
                operator_profile_set(
                    actor=None,
                    user_id=user.pk,
                    query_type_codes=[c for c in str(types).split(",") if c] if types else None,
                    capacity=options["capacity"],  # type: ignore[arg-type]
                )
            except HubError as error:
                raise CommandError(f"{error.code}: {error.message}") from None
        if options["online"]:
            presence_set(actor=user, presence="online")
        self.stdout.write(f"{user.get_username()}: {options['role']}")
