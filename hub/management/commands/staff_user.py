"""Management command: create or update a staff user with one role.

manage.py staff_user alice --role Operator [--online]   # password from HUB_STAFF_PASSWORD
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.accounts import staff_user_ensure
from hub.roles import Role
from routing.services import presence_set


class Command(BaseCommand):
    help = "Create or update a staff user (password from the HUB_STAFF_PASSWORD variable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=[r.value for r in Role], default=Role.OPERATOR.value)
        parser.add_argument("--online", action="store_true", help="set presence to online")
        parser.add_argument("--capacity", type=int, default=None)

    def handle(self, *args: object, **options: object) -> None:
        password = os.environ.get("HUB_STAFF_PASSWORD")
        if not password:
            raise CommandError("Set HUB_STAFF_PASSWORD to the new user's password.")
        user = staff_user_ensure(
            username=str(options["username"]), password=password, role=Role(options["role"])
        )
        if options["capacity"] is not None:
            from routing.services import operator_state_get

            state = operator_state_get(user_id=user.pk)
            state.capacity = int(options["capacity"])  # type: ignore[arg-type]
            state.save(update_fields=["capacity"])
        if options["online"]:
            presence_set(actor=user, presence="online")
        self.stdout.write(f"{user.get_username()}: {options['role']}")
