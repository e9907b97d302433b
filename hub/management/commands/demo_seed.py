"""Management command: seed the demo (staff users with password "demo", query types,
resolution reasons, operators' skills, customers, chats).

Refuses to run unless the demo is enabled (``HUB_DEMO=1``), so a production database never
gets these users.  Idempotent: running it twice changes nothing.

Routing data is written before anyone goes online or writes, because both route at once:
operator1 serves Payments and Follow-up, operator2 Claims and Follow-up.  Ana arrives on the
payments entry point (operator1), Ben on claims (operator2) and Chen with none, so the
default type, Follow-up, sends him to operator1 (least recently assigned).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from chat.services import operator_message_send, webchat_message_receive
from hub.accounts import staff_user_ensure
from hub.roles import Role
from routing.models import QueryType, ResolutionReason
from routing.services import operator_state_get, presence_set

DEMO_PASSWORD = "demo"  # demo credentials live only here, behind HUB_DEMO
STAFF = [
    ("admin", Role.ADMIN, "Ada", "Admin"),
    ("coordinator", Role.COORDINATOR, "Carla", "Coordinator"),
    ("operator1", Role.OPERATOR, "Omar", "One"),
    ("operator2", Role.OPERATOR, "Olga", "Two"),
]
# (code, name, priority, menu position, keywords); follow-up is the default type.
QUERY_TYPES = [
    ("payments", "Payments", 120, 1, ["payment", "pay", "transfer", "card", "pin", "limit"]),
    ("follow-up", "Follow-up", 100, 2, ["follow up", "status", "update", "pending"]),
    ("claims", "Claims", 150, 3, ["claim", "complaint", "refund", "dispute", "fraud"]),
]
DEFAULT_TYPE = "follow-up"
# (name, the codes of the types it applies to; empty: every type)
RESOLUTIONS = [
    ("Resolved in the chat", []),
    ("Referred to a branch", []),
    ("Customer stopped answering", []),
    ("Payment made or traced", ["payments"]),
    ("Card unblocked or replaced", ["payments"]),
    ("Status given", ["follow-up"]),
    ("Claim registered", ["claims"]),
    ("Claim rejected", ["claims"]),
]
SKILLS = {"operator1": ["payments", "follow-up"], "operator2": ["claims", "follow-up"]}
# (visitor id, name, messages, entry point: the widget's type code, or None for the default)
CONVERSATIONS = [
    (
        "demo-visitor-ana",
        "Ana García",
        ["Hi, my card was blocked at a shop today.", "Can you help?"],
        "payments",
    ),
    (
        "demo-visitor-ben",
        "Ben Müller",
        ["I sent a transfer yesterday and it has not arrived."],
        "claims",
    ),
    ("demo-visitor-chen", "Chen Li", ["How do I raise my daily transfer limit?"], None),
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
        types = self._routing_data()
        for username, codes in SKILLS.items():
            state = operator_state_get(user_id=users[username].pk)
            state.query_types.set([types[code] for code in codes])
        for username in ("operator1", "operator2"):
            presence_set(actor=users[username], presence="online")
        for visitor, name, texts, entry_point in CONVERSATIONS:
            result = None
            for index, text in enumerate(texts):
                result = webchat_message_receive(
                    visitor_id=visitor,
                    client_id=f"seed-{index}",
                    text=text,
                    display_name=name,
                    entry_point=entry_point,
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

    @transaction.atomic
    def _routing_data(self) -> dict[str, QueryType]:
        """Query types and resolution reasons, matched by code and name.  There is no
        service for this catalogue: coordinators keep it in the Django admin, which writes
        the rows directly too."""
        # Only one type may be the default (a partial unique constraint): clear the others
        # before setting it, so re-running after an edit in the admin cannot collide.
        QueryType.objects.filter(is_default=True).exclude(code=DEFAULT_TYPE).update(
            is_default=False
        )
        types: dict[str, QueryType] = {}
        for code, name, priority, position, keywords in QUERY_TYPES:
            types[code], _ = QueryType.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "priority": priority,
                    "menu_position": position,
                    "keywords": keywords,
                    "is_default": code == DEFAULT_TYPE,
                    "active": True,
                },
            )
        for position, (name, codes) in enumerate(RESOLUTIONS, start=1):
            reason, _ = ResolutionReason.objects.update_or_create(
                name=name, defaults={"position": position, "active": True}
            )
            reason.query_types.set([types[code] for code in codes])
        return types
