"""Management command: seed the demo (staff users with password "demo", customers, chats).

Refuses to run unless the demo is enabled (``HUB_DEMO=1``), so a production database never
gets these users.  Idempotent: running it twice changes nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError

from chat.services import operator_message_send, webchat_message_receive
from hub.accounts import staff_user_ensure
from hub.roles import Role
from routing.services import presence_set

DEMO_PASSWORD = "demo"  # demo credentials live only here, behind HUB_DEMO
STAFF = [
    ("admin", Role.ADMIN, "Ada", "Admin"),
    ("coordinator", Role.COORDINATOR, "Carla", "Coordinator"),
    ("operator1", Role.OPERATOR, "Omar", "One"),
    ("operator2", Role.OPERATOR, "Olga", "Two"),
]
CONVERSATIONS = [
    (
        "demo-visitor-ana",
        "Ana García",
        ["Hi, my card was blocked at a shop today.", "Can you help?"],
    ),
    ("demo-visitor-ben", "Ben Müller", ["I sent a transfer yesterday and it has not arrived."]),
    ("demo-visitor-chen", "Chen Li", ["How do I raise my daily transfer limit?"]),
]


class Command(BaseCommand):
    help = "Seed the demo users, customers and conversations (requires HUB_DEMO=1)."

    def handle(self, *args: object, **options: object) -> None:
        if not settings.HUB_DEMO:
            raise CommandError("The demo is disabled: set HUB_DEMO=1 to seed demo data.")
        users: dict[str, AbstractBaseUser] = {}
        for username, role, first, last in STAFF:
            users[username] = staff_user_ensure(
                username=username,
                password=DEMO_PASSWORD,
                role=role,
                first_name=first,
                last_name=last,
            )
        for username in ("operator1", "operator2"):
            presence_set(actor=users[username], presence="online")
        for visitor, name, texts in CONVERSATIONS:
            result = None
            for index, text in enumerate(texts):
                result = webchat_message_receive(
                    visitor_id=visitor, client_id=f"seed-{index}", text=text, display_name=name
                )
            operator_id = result.conversation["operator_id"] if result else None
            if result and result.created and operator_id:
                operator = next(u for u in users.values() if u.pk == operator_id)
                operator_message_send(
                    actor=operator,
                    conversation_id=result.conversation["id"],
                    client_id=f"seed-greeting-{visitor}",
                    text=f"Hello {name.split()[0]}, I'm looking into it now.",
                )
        self.stdout.write(
            self.style.SUCCESS(
                "Demo seeded: admin, coordinator, operator1, operator2 (password: demo)"
            )
        )
