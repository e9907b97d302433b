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
from hsm.services import templates_demo_ensure
from hub.accounts import staff_user_ensure
from hub.roles import Role
from knowledge_base.models import Reply
from knowledge_base.services import reply_create
from routing.models import QueryType, ResolutionReason
from routing.services import operator_state_get, presence_set, routing_settings_get
from scheduling.models import Schedule
from scheduling.services import schedule_save, special_day_create

DEMO_PASSWORD = "demo"  # demo credentials live only here, behind HUB_DEMO
# Open around the clock, so the demo routes whenever it runs; Christmas Day closed every
# year shows the out-of-hours reply (preview it: GET /api/hours/preview/?at=2026-12-25T10:00).
DEMO_HOURS = [
    {"weekday": day, "start": "00:00", "end": "00:00", "crosses_midnight": True} for day in range(7)
]
DEMO_AWAY_GRACE_SECONDS = 8 * 3600
DEMO_AUTOREPLIES = {
    "en": "Thanks for writing. Nobody is available right now; we open {next_opening} "
    "and will answer you then.",
    "es": "Gracias por escribirnos. Ahora no hay nadie disponible; abrimos el "
    "{next_opening} y te responderemos entonces.",
}
STAFF = [
    ("admin", Role.ADMIN, "Ada", "Admin"),
    ("coordinator", Role.COORDINATOR, "Carla", "Coordinator"),
    ("operator1", Role.OPERATOR, "Omar", "One"),
    ("operator2", Role.OPERATOR, "Olga", "Two"),
    # Offline in the demo, so routing keeps the seeded conversations with the operators:
    # a contact-center maker (back-office actions) and the payment roles of seed 002.
    ("contact", Role.CONTACT_CENTER, "Cora", "Contact"),
    ("inquiry", Role.INQUIRY_AGENT, "Ines", "Inquiry"),
    ("claimagent", Role.CLAIM_AGENT, "Clara", "Claims"),
    ("payadmin", Role.PAYMENT_ADMIN, "Pablo", "Payments"),
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
# Knowledge-base replies: (shortcut, title, language, type codes (empty: every type), body).
KB_REPLIES = [
    (
        "/greeting",
        "Greeting",
        "en",
        [],
        'Hello {{customer.first_name | "there"}}, I\'m {{operator.name}}. '
        "How can I help you today?",
    ),
    (
        "/saludo",
        "Saludo",
        "es",
        [],
        'Hola {{customer.first_name | ""}}, soy {{operator.name}}. ¿En qué puedo ayudarle?',
    ),
    (
        "/card-blocked",
        "Card blocked",
        "en",
        ["payments"],
        'I\'m sorry about that, {{customer.first_name | "there"}}. For your safety the card was '
        "blocked after several declined attempts. I can unblock it now if you confirm the last "
        "four digits of the card and the amount of your last purchase.",
    ),
    (
        "/tarjeta-bloqueada",
        "Tarjeta bloqueada",
        "es",
        ["payments"],
        'Lamento las molestias, {{customer.first_name | ""}}. Por su seguridad la tarjeta se '
        "bloqueó tras varios intentos rechazados. Puedo desbloquearla ahora si me confirma los "
        "cuatro últimos dígitos y el importe de su última compra.",
    ),
    (
        "/card-replacement",
        "Card replacement",
        "en",
        ["payments"],
        "A replacement card is on its way to the address we hold for you. It arrives in 3 to 5 "
        "working days; your PIN stays the same.",
    ),
    (
        "/pin-reset",
        "PIN reset",
        "en",
        ["payments"],
        "You can set a new PIN in the app under Cards → Security → Change PIN. It works at once "
        "for card payments and after your first cash withdrawal at an ATM.",
    ),
    (
        "/transfer-delay",
        "Transfer not arrived",
        "en",
        ["payments", "claims"],
        "Transfers to other banks take up to one working day. If it has not arrived by tomorrow "
        "afternoon, I will open a trace with reference {{conversation.reference}}.",
    ),
    (
        "/transferencia-retraso",
        "Transferencia no recibida",
        "es",
        ["payments", "claims"],
        "Las transferencias a otras entidades tardan hasta un día hábil. Si mañana por la tarde "
        "no ha llegado, abriré una investigación con la referencia {{conversation.reference}}.",
    ),
    (
        "/daily-limit",
        "Raise the daily transfer limit",
        "en",
        ["payments"],
        "You can raise your daily transfer limit up to 6,000 in the app (Settings → Limits). For "
        "a higher limit I can send a request to the back office for approval.",
    ),
    (
        "/limite-diario",
        "Ampliar el límite diario",
        "es",
        ["payments"],
        "Puede ampliar su límite diario de transferencias hasta 6.000 en la app (Ajustes → "
        "Límites). Para un límite mayor puedo enviar una solicitud a nuestro equipo.",
    ),
    (
        "/claim-registered",
        "Claim registered",
        "en",
        ["claims"],
        "Your claim is registered with reference {{conversation.reference}}. We answer within 10 "
        "working days and will write to you by email.",
    ),
    (
        "/fraud-suspected",
        "Suspected fraud",
        "en",
        ["claims"],
        "Thank you for telling us. I have blocked the card to stop further charges. Please do not "
        "share codes sent by SMS with anyone: the bank never asks for them.",
    ),
    (
        "/status-pending",
        "Request still pending",
        "en",
        ["follow-up"],
        "Your request is still being processed. I will follow up and write to you here as soon "
        "as there is news.",
    ),
    (
        "/opening-hours",
        "Opening hours",
        "en",
        [],
        'Our team is available {{today.opening_hours | "Monday to Friday, 9:00 to 18:00"}}.',
    ),
    (
        "/horario",
        "Horario de atención",
        "es",
        [],
        'Nuestro horario hoy: {{today.opening_hours | "de lunes a viernes, de 9:00 a 18:00"}}.',
    ),
    (
        "/goodbye",
        "Goodbye",
        "en",
        [],
        'Is there anything else I can help you with, {{customer.first_name | "there"}}? '
        "Thank you for contacting us.",
    ),
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
        self._knowledge_base(users["coordinator"], types)
        templates_demo_ensure(actor=users["coordinator"])  # WhatsApp templates, approved
        self._opening_hours()
        # The demo's operators are online before anyone opens their console: keep them so
        # for a working day instead of the production grace of a minute.
        policy = routing_settings_get()
        policy.away_grace_seconds = max(policy.away_grace_seconds, DEMO_AWAY_GRACE_SECONDS)
        policy.save(update_fields=["away_grace_seconds"])
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
                "Demo seeded: admin, coordinator, operator1, operator2, contact, inquiry, "
                "claimagent, payadmin (password: demo)"
            )
        )

    def _opening_hours(self) -> None:
        """Global hours (see DEMO_HOURS), written once."""
        if Schedule.objects.filter(query_type__isnull=True).exists():
            return
        schedule_save(
            actor=None,
            query_type_code=None,
            version=0,
            time_zone="Europe/Madrid",
            weekly=DEMO_HOURS,
            autoreplies=DEMO_AUTOREPLIES,
        )
        special_day_create(
            actor=None,
            query_type_code=None,
            day="2025-12-25",
            recurring_yearly=True,
            label="Christmas Day",
        )

    def _knowledge_base(self, coordinator: AbstractBaseUser, types: dict[str, QueryType]) -> None:
        """The replies, through the service, skipping those whose shortcut is live already
        (a coordinator's later edits are kept)."""
        live = set(Reply.objects.filter(retired_at__isnull=True).values_list("shortcut", flat=True))
        for shortcut, title, language, codes, body in KB_REPLIES:
            if shortcut in live:
                continue
            reply_create(
                actor=coordinator,
                title=title,
                shortcut=shortcut,
                body=body,
                language=language,
                query_type_ids=[types[code].pk for code in codes],
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
