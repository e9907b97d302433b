"""Management command: move every active conversation of one operator at once.

    manage.py derive_operator --from alice --to bob [--force] [--note TEXT] [--yes]
    manage.py derive_operator --from alice --spread [--yes]

Transport only: it resolves user names, shows ``derivation_preview``'s plan, asks before
moving anything (unless ``--yes``), then calls ``operator_conversations_derive`` as the hub
itself (``actor=None``: whoever can run manage.py already holds every permission) and
draws its progress on stderr.  The derivation is all or nothing; the service re-plans under
its locks, so the summary printed at the end is what actually happened.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from hub.exceptions import HubError
from routing.selectors import user_id_by_username, usernames
from routing.services import derivation_preview, operator_conversations_derive

QUEUE_LABEL = "the queue (no online operator with room serves its type)"


class _ProgressBar:
    """A one-line ``[#####.....] done/total`` bar redrawn in place on stderr."""

    WIDTH = 30

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self.drawn = False

    def update(self, done: int, total: int) -> None:
        filled = self.WIDTH * done // total if total else self.WIDTH
        bar = "#" * filled + "." * (self.WIDTH - filled)
        # Plain text: stderr's default style would paint the bar as an error.
        self.out.write(f"\r[{bar}] {done}/{total}", style_func=lambda text: text, ending="")
        self.out.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.out.write("", style_func=lambda text: text)


def _hub_error(error: HubError) -> CommandError:
    return CommandError(f"{error.code}: {error.message}")


class Command(BaseCommand):
    help = (
        "Move every active conversation of an operator to another operator (--to) or spread "
        "them over the online operators who serve their types (--spread)."
    )
    # call_command(..., stdin=StringIO("y\n")) answers the confirmation in tests.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="from_username", required=True, metavar="USERNAME")
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--to", dest="to_username", metavar="USERNAME")
        target.add_argument(
            "--spread",
            action="store_true",
            help="spread over online operators; those nobody can take wait in the queue",
        )
        parser.add_argument(
            "--force", action="store_true", help="allow going beyond the target's capacity"
        )
        parser.add_argument("--note", default="", help="recorded with every moved conversation")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: Any, **options: Any) -> None:
        from_id = self._user_id(options["from_username"])
        to_id = None if options["spread"] else self._user_id(options["to_username"])
        try:
            plan = derivation_preview(
                actor=None,
                from_operator_id=from_id,
                to_operator_id=to_id,
                force=options["force"],
            )
        except HubError as error:
            raise _hub_error(error) from None
        self._print_plan(options["from_username"], plan)
        stdin = options.get("stdin") or sys.stdin
        if not options["yes"] and not self._confirm(plan["count"], stdin):
            raise CommandError("Cancelled: nothing was derived.")
        bar = _ProgressBar(self.stderr)
        try:
            summary = operator_conversations_derive(
                actor=None,
                from_operator_id=from_id,
                to_operator_id=to_id,
                force=options["force"],
                note=options["note"],
                progress=bar.update,
            )
        except HubError as error:
            raise _hub_error(error) from None
        finally:
            bar.finish()
        self.stdout.write(
            f"Derived {summary['count']} conversation(s) from {options['from_username']} "
            f"(batch {summary['batch_id']}).",
            style_func=self.style.SUCCESS,
        )
        self._print_targets(summary["per_target"])

    def _user_id(self, username: str) -> int:
        user_id = user_id_by_username(username=username)
        if user_id is None:
            raise CommandError(f"No user named '{username}'.")
        return user_id

    def _print_plan(self, from_username: str, plan: dict[str, Any]) -> None:
        self.stdout.write(f"{from_username} has {plan['count']} active conversation(s):")
        self._print_targets(plan["per_target"])

    def _print_targets(self, per_target: dict[str, int]) -> None:
        names = usernames(user_ids=[int(key) for key in per_target if key != "queue"])
        for key, count in sorted(per_target.items(), key=lambda item: -item[1]):
            label = QUEUE_LABEL if key == "queue" else names[int(key)]
            self.stdout.write(f"  {count:>5}  → {label}")

    def _confirm(self, count: int, stdin: IO[str]) -> bool:
        self.stdout.write(f"Derive {count} conversation(s)? [y/N] ", ending="")
        self.stdout.flush()
        return stdin.readline().strip().lower() in {"y", "yes"}
