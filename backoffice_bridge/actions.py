"""The action framework (domain): each back-office action type is one class.

A type declares its parameters (checked here with a precise error for each), whether it
needs a checker, whether it acts on behalf of the customer (needs consent), which
permission may start it, the bank's business status names, the conflict group (open
requests of one group for one bank user exclude each other) and how it is executed — and,
for temporary actions, reverted — through the client.  Adding a type is one new class
decorated with ``@action_register``; services, views and the console read the registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from django.conf import settings
from django.utils.dateparse import parse_datetime

from backoffice_bridge.client import BackofficeClient, user_path
from hub.exceptions import ErrorCode, ValidationFailed

PERM_START_ACTIONS = "backoffice_bridge.start_actions"
PERM_APPROVE_ACTIONS = "backoffice_bridge.approve_actions"
PERM_ACT_ON_BEHALF = "backoffice_bridge.act_on_behalf"

# Business statuses every type shares (the per-type ones are declared on each class).
STATUS_APPROVED = "Approved"
STATUS_REJECTED = "Rejected"
STATUS_EXPIRED = "Expired"
STATUS_FAILED = "Failed"
STATUS_AWAITING_CUSTOMER = "Awaiting Customer Confirmation"
STATUS_CANCELLED = "Cancelled"


_KIND_NAMES = {int: "an integer", str: "a string", bool: "a boolean"}


@dataclass(frozen=True)
class Param:
    """One parameter: a JSON type, required or not, bounds or choices.  ``maximum_setting``
    names a setting holding the bank's maximum (read when validating, so it can change)."""

    name: str
    kind: type
    label: str
    required: bool = True
    minimum: int | None = None
    maximum_setting: str | None = None
    max_length: int | None = None
    choices: tuple[str, ...] | None = None

    def maximum(self) -> int | None:
        return getattr(settings, self.maximum_setting) if self.maximum_setting else None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": {int: "integer", str: "string", bool: "boolean"}[self.kind],
            "label": self.label,
            "required": self.required,
            "minimum": self.minimum,
            "maximum": self.maximum(),
            "max_length": self.max_length,
            "choices": list(self.choices) if self.choices else None,
        }

    def clean(self, params: dict[str, Any]) -> Any:
        name = self.name
        value = params.get(name)
        if value is None:
            if self.required:
                raise ValidationFailed(
                    f"Parameter '{name}' is required.",
                    code=ErrorCode.MISSING_FIELD,
                    field=f"params.{name}",
                    reason="missing",
                )
            return None
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            raise ValidationFailed(
                f"Parameter '{name}' must be {_KIND_NAMES[self.kind]}.",
                code=ErrorCode.WRONG_TYPE,
                field=f"params.{name}",
                reason="wrong_type",
            )
        if self.kind is str:
            value = value.strip()
            if self.required and not value:
                raise ValidationFailed(
                    f"Parameter '{name}' may not be empty.",
                    code=ErrorCode.MISSING_FIELD,
                    field=f"params.{name}",
                    reason="missing",
                )
            if self.max_length is not None and len(value) > self.max_length:
                raise ValidationFailed(
                    f"Parameter '{name}' is longer than {self.max_length} characters.",
                    field=f"params.{name}",
                    reason="too_long",
                    max_length=self.max_length,
                )
        if self.choices is not None and value not in self.choices:
            raise ValidationFailed(
                f"Parameter '{name}' must be one of: {', '.join(self.choices)}.",
                field=f"params.{name}",
                reason="not_a_choice",
                choices=list(self.choices),
            )
        if self.kind is int:
            if self.minimum is not None and value < self.minimum:
                raise ValidationFailed(
                    f"Parameter '{name}' may not be below {self.minimum}"
                    + (" (negative limits are not allowed)." if self.minimum == 0 else "."),
                    field=f"params.{name}",
                    reason="negative" if self.minimum == 0 and value < 0 else "below_minimum",
                    minimum=self.minimum,
                )
            maximum = self.maximum()
            if maximum is not None and value > maximum:
                raise ValidationFailed(
                    f"Parameter '{name}' ({value}) is above the bank's maximum of {maximum}.",
                    field=f"params.{name}",
                    reason="above_maximum",
                    maximum=maximum,
                )
        return value


class ActionType:
    """Base of every action type; subclasses set the class attributes and ``execute``."""

    name: ClassVar[str]
    label: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    needs_checker: ClassVar[bool] = True
    on_behalf: ClassVar[bool] = False
    permission: ClassVar[str] = PERM_START_ACTIONS
    #: Open requests of the same group for one bank user conflict (default: the type).
    conflict_group: ClassVar[str] = ""
    pending_status: ClassVar[str]
    done_status: ClassVar[str]
    #: Set for temporary actions: the hub's scheduler calls ``revert`` when it elapses.
    reverted_status: ClassVar[str] = ""
    #: The customer confirms in the chat with a one-time code before anyone decides it
    #: (the setting BACKOFFICE_CONFIRM_ACTION_TYPES, when set, overrides every type).
    customer_confirmation: ClassVar[bool] = False
    #: The customer's message when the action is done, per language (a primary subtag,
    #: "en", "es"…; English is the fallback), with ``str.format`` fields from
    #: ``customer_message_fields``.  Empty: the type tells the customer nothing.
    customer_messages: ClassVar[dict[str, str]] = {}
    #: Whether the customer is told by default; the maker chooses per request
    #: (``notify_customer``).  Only meaningful with ``customer_messages``.
    notify_customer: ClassVar[bool] = False

    @classmethod
    def needs_confirmation(cls) -> bool:
        configured = getattr(settings, "BACKOFFICE_CONFIRM_ACTION_TYPES", None)
        if configured is not None:
            return cls.name in configured
        return cls.customer_confirmation

    @classmethod
    def group(cls) -> str:
        return cls.conflict_group or cls.name

    @classmethod
    def duration(cls) -> timedelta | None:
        """How long a temporary action lasts (None: permanent)."""
        return None

    @classmethod
    def clean(cls, params: Any) -> dict[str, Any]:
        """The parameters, checked and normalised; unknown ones are refused."""
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValidationFailed(
                "params must be an object.", code=ErrorCode.WRONG_TYPE, field="params"
            )
        known = {p.name for p in cls.params}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValidationFailed(
                f"Unknown parameter '{unknown[0]}' for {cls.name}.",
                field=f"params.{unknown[0]}",
                reason="unknown_parameter",
            )
        cleaned = {p.name: p.clean(params) for p in cls.params}
        cleaned = {k: v for k, v in cleaned.items() if v is not None}
        cls.check(cleaned)
        return cleaned

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        """Rules across parameters (override)."""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "label": cls.label,
            "params": [p.describe() for p in cls.params],
            "needs_checker": cls.needs_checker,
            "on_behalf": cls.on_behalf,
            "needs_confirmation": cls.needs_confirmation(),
            "permission": cls.permission,
            "pending_status": cls.pending_status,
            "done_status": cls.done_status,
            "temporary_hours": (
                cls.duration().total_seconds() / 3600 if cls.duration() is not None else None
            ),
            "customer_message": bool(cls.customer_messages),
            "notify_customer": cls.notifies_by_default(),
        }

    @classmethod
    async def execute(
        cls,
        client: BackofficeClient,
        *,
        bank_user_id: str,
        params: dict[str, Any],
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Perform the action at the back office; the answer's body (raises the client's
        errors)."""
        raise NotImplementedError

    @classmethod
    async def revert(
        cls, client: BackofficeClient, *, bank_user_id: str, idempotency_key: str
    ) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def note(cls, *, bank_user_id: str, params: dict[str, Any], result: dict[str, Any]) -> str:
        """The internal note posted on the conversation when it is done."""
        return f"{cls.label}: done for bank user {bank_user_id}."

    @classmethod
    def notifies_by_default(cls) -> bool:
        return cls.notify_customer and bool(cls.customer_messages)

    @classmethod
    def customer_message_fields(
        cls, *, language: str, params: dict[str, Any], result: dict[str, Any], at: datetime
    ) -> dict[str, Any]:
        """The fields ``customer_messages`` may use (override): the parameters."""
        return dict(params)

    @classmethod
    def customer_message(
        cls, *, language: str, params: dict[str, Any], result: dict[str, Any], at: datetime
    ) -> tuple[str, str] | None:
        """``(language, text)`` telling the customer the action is done, in ``language``
        when the type has that translation (else English), or None (nothing to say)."""
        lang = language if language in cls.customer_messages else "en"
        template = cls.customer_messages.get(lang)
        if template is None:
            return None
        fields = cls.customer_message_fields(language=lang, params=params, result=result, at=at)
        return lang, template.format_map(_Fields(fields))


class _Fields(dict[str, Any]):
    """Format fields where a missing one renders empty rather than failing the outcome."""

    def __missing__(self, key: str) -> str:
        return ""


_REGISTRY: dict[str, type[ActionType]] = {}


def action_register(cls: type[ActionType]) -> type[ActionType]:
    """Class decorator: the one place a type is registered."""
    if cls.name in _REGISTRY:
        raise ValueError(f"action type {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def action_types() -> list[type[ActionType]]:
    return list(_REGISTRY.values())


def action_type_get(name: Any) -> type[ActionType]:
    """The registered type, or ValidationFailed naming ``action_type``."""
    found = _REGISTRY.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValidationFailed(
            f"Unknown action type {name!r}.",
            field="action_type",
            reason="unknown_action_type",
            known=sorted(_REGISTRY),
        )
    return found


# --- the types ------------------------------------------------------------------------------

_NOTE = Param("note", str, "Note for the checker", required=False, max_length=500)


@action_register
class BlockUser(ActionType):
    """Inactivate a user: lost or stolen device, compromised credentials (seed 000)."""

    name = "block_user"
    label = "Inactivate (block) user"
    params = (
        Param(
            "reason",
            str,
            "Why",
            choices=("lost_device", "stolen_device", "compromised_credentials", "customer_request"),
        ),
        _NOTE,
    )
    conflict_group = "user_status"
    pending_status = "To Be Inactivated"
    done_status = "Inactive"
    notify_customer = True
    customer_messages = {
        "en": (
            "For your security, your online banking access has been blocked. "
            "To unblock it, contact us again."
        ),
        "es": (
            "Por su seguridad, hemos bloqueado su acceso a la banca en línea. "
            "Para desbloquearlo, vuelva a contactarnos."
        ),
    }

    @classmethod
    async def execute(cls, client, *, bank_user_id, params, idempotency_key):  # type: ignore[override]
        answer = await client.write(
            user_path(bank_user_id, "block"),
            idempotency_key=idempotency_key,
            body={"reason": params["reason"]},
        )
        return answer.body

    @classmethod
    def note(cls, *, bank_user_id, params, result):  # type: ignore[override]
        status = (result.get("user") or {}).get("status", "?")
        return f"Bank user {bank_user_id} inactivated ({params['reason']}); status {status}."


@action_register
class UnblockUser(ActionType):
    """Reactivate a suspended or locked user."""

    name = "unblock_user"
    label = "Reactivate user"
    params = (_NOTE,)
    conflict_group = "user_status"
    pending_status = "To Be Activated"
    done_status = "Active"
    notify_customer = True
    customer_messages = {
        "en": "Your online banking access is active again.",
        "es": "Su acceso a la banca en línea vuelve a estar activo.",
    }

    @classmethod
    async def execute(cls, client, *, bank_user_id, params, idempotency_key):  # type: ignore[override]
        return (
            await client.write(user_path(bank_user_id, "unblock"), idempotency_key=idempotency_key)
        ).body

    @classmethod
    def note(cls, *, bank_user_id, params, result):  # type: ignore[override]
        return f"Bank user {bank_user_id} reactivated; status active."


@action_register
class TemporaryLimits(ActionType):
    """Transfer limits for a while (24 h by default), reverted by the hub's scheduler."""

    name = "temporary_limits"
    label = "Temporary transfer limits"
    params = (
        Param(
            "daily_transfer",
            int,
            "Daily transfer limit",
            minimum=0,
            maximum_setting="BACKOFFICE_MAX_DAILY_TRANSFER",
        ),
        Param(
            "single_transfer",
            int,
            "Single transfer limit",
            minimum=0,
            maximum_setting="BACKOFFICE_MAX_SINGLE_TRANSFER",
        ),
        _NOTE,
    )
    conflict_group = "limits"
    pending_status = "To Be Changed (Temporary Limits)"
    done_status = "Temporary Limits Active"
    reverted_status = "Limits Reverted"
    notify_customer = True
    customer_messages = {
        "en": (
            "Your transfer limits have been changed for {hours} hours: up to {daily_transfer} "
            "a day and {single_transfer} per transfer. Then your usual limits apply again."
        ),
        "es": (
            "Hemos cambiado sus límites de transferencia durante {hours} horas: hasta "
            "{daily_transfer} al día y {single_transfer} por transferencia. Después vuelven "
            "a aplicarse sus límites habituales."
        ),
    }

    @classmethod
    def duration(cls) -> timedelta:
        return timedelta(hours=settings.BACKOFFICE_TEMPORARY_LIMITS_HOURS)

    @classmethod
    def customer_message_fields(cls, *, language, params, result, at):  # type: ignore[override]
        return dict(params) | {"hours": f"{cls.duration().total_seconds() / 3600:g}"}

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        if params["single_transfer"] > params["daily_transfer"]:
            raise ValidationFailed(
                "The single transfer limit may not exceed the daily limit.",
                field="params.single_transfer",
                reason="above_daily",
            )

    @classmethod
    async def execute(cls, client, *, bank_user_id, params, idempotency_key):  # type: ignore[override]
        hours = int(cls.duration().total_seconds() // 3600) or 1
        return (
            await client.write(
                user_path(bank_user_id, "limits/temporary"),
                idempotency_key=idempotency_key,
                body={
                    "daily_transfer": params["daily_transfer"],
                    "single_transfer": params["single_transfer"],
                    "hours": hours,
                },
            )
        ).body

    @classmethod
    async def revert(cls, client, *, bank_user_id, idempotency_key):  # type: ignore[override]
        return (
            await client.write(
                user_path(bank_user_id, "limits/temporary/revert"), idempotency_key=idempotency_key
            )
        ).body

    @classmethod
    def note(cls, *, bank_user_id, params, result):  # type: ignore[override]
        hours = cls.duration().total_seconds() / 3600
        return (
            f"Temporary limits for bank user {bank_user_id}: daily {params['daily_transfer']}, "
            f"single {params['single_transfer']}, for {hours:g} h."
        )


@action_register
class ResetPassword(ActionType):
    """Password reset: the back office sends the customer a one-time code.  Executed on
    the maker's word alone (no checker): the customer must still complete it with the code
    sent to the contact details on file.  Set ``needs_checker`` to change that."""

    name = "reset_password"
    label = "Reset password"
    params = (_NOTE,)
    needs_checker = False
    conflict_group = "password"
    pending_status = "To Be Reset"
    done_status = "Password Reset Sent"
    # How the customer completes it: what the back office sent, and for how long.
    notify_customer = True
    customer_messages = {
        "en": "We have sent {delivery}{validity}. Use it to choose a new password.",
        "es": "Le hemos enviado {delivery}{validity}. Úselo para elegir una nueva contraseña.",
    }
    _DELIVERY: ClassVar[dict[str, dict[str, str]]] = {
        "en": {
            "sms": "a one-time code by SMS to your registered mobile number",
            "email": "a reset link to your registered e-mail",
            "": "a one-time code to your registered contact details",
        },
        "es": {
            "sms": "un código de un solo uso por SMS a su número de móvil registrado",
            "email": "un enlace de restablecimiento a su correo electrónico registrado",
            "": "un código de un solo uso a sus datos de contacto registrados",
        },
    }
    _VALIDITY: ClassVar[dict[str, str]] = {
        "en": "; it is valid for {minutes} minutes",
        "es": "; es válido durante {minutes} minutos",
    }

    @classmethod
    def customer_message_fields(cls, *, language, params, result, at):  # type: ignore[override]
        reset = result.get("reset") or {}
        phrases = cls._DELIVERY.get(language, cls._DELIVERY["en"])
        delivery = phrases.get(str(reset.get("delivery") or ""), phrases[""])
        validity = ""
        expires = parse_datetime(str(reset.get("expires_at") or ""))
        if expires is not None and expires.tzinfo is not None and expires > at:
            minutes = max(1, round((expires - at).total_seconds() / 60))
            validity = cls._VALIDITY.get(language, cls._VALIDITY["en"]).format(minutes=minutes)
        return {"delivery": delivery, "validity": validity}

    @classmethod
    async def execute(cls, client, *, bank_user_id, params, idempotency_key):  # type: ignore[override]
        return (
            await client.write(
                user_path(bank_user_id, "password-reset"), idempotency_key=idempotency_key
            )
        ).body

    @classmethod
    def note(cls, *, bank_user_id, params, result):  # type: ignore[override]
        instructions = (result.get("reset") or {}).get("instructions", "")
        return f"Password reset started for bank user {bank_user_id}. {instructions}".strip()


# --- on behalf of the customer (seed 001) ---------------------------------------------------
#
# Seed 001 gates these by a staff permission and the customer's recorded consent, on an
# account that is neither new, locked nor suspended — not by a checker: the representative
# acts for the customer as the customer would, every step in the audit log.  A bank that
# wants four eyes as well sets ``needs_checker = True``.


@dataclass(frozen=True)
class AmountParam(Param):
    """Money: a JSON number or a decimal string, above zero, at most two decimals, kept as
    a string ("12.50") so no float ever carries it."""

    def maximum(self) -> int | None:
        # Not a hub setting yet: 1,000,000 unless the bank sets it.
        if not self.maximum_setting:
            return None
        return getattr(settings, self.maximum_setting, 1_000_000)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"type": "decimal"}

    def clean(self, params: dict[str, Any]) -> Any:
        name, value = self.name, params.get(self.name)
        field = f"params.{name}"
        if value is None:
            raise ValidationFailed(
                f"Parameter '{name}' is required.",
                code=ErrorCode.MISSING_FIELD,
                field=field,
                reason="missing",
            )
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValidationFailed(
                f"Parameter '{name}' must be an amount.",
                code=ErrorCode.WRONG_TYPE,
                field=field,
                reason="wrong_type",
            )
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationFailed(
                f"Parameter '{name}' must be an amount.",
                code=ErrorCode.WRONG_TYPE,
                field=field,
                reason="wrong_type",
            ) from None
        if not amount.is_finite():
            raise ValidationFailed(
                f"Parameter '{name}' must be an amount.", field=field, reason="wrong_type"
            )
        if amount < 0:
            raise ValidationFailed(
                f"Parameter '{name}' may not be negative.", field=field, reason="negative"
            )
        if amount == 0:
            raise ValidationFailed(
                f"Parameter '{name}' must be above zero.", field=field, reason="not_positive"
            )
        if -amount.as_tuple().exponent > 2:  # type: ignore[operator]
            raise ValidationFailed(
                f"Parameter '{name}' has more than two decimals.",
                field=field,
                reason="too_many_decimals",
            )
        maximum = self.maximum()
        if maximum is not None and amount > maximum:
            raise ValidationFailed(
                f"Parameter '{name}' ({amount}) is above the maximum of {maximum}.",
                field=field,
                reason="above_maximum",
                maximum=maximum,
            )
        return str(amount.quantize(Decimal("0.01")))


_TRANSACTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_CHEQUE_NUMBER = re.compile(r"[0-9]{1,12}")


@action_register
class DisputeTransaction(ActionType):
    """Dispute one transaction of the customer's, on their behalf (seed 001)."""

    name = "dispute_transaction"
    label = "Dispute a transaction"
    params = (
        Param("transaction_id", str, "Transaction id", max_length=64),
        AmountParam(
            "amount", str, "Disputed amount", maximum_setting="BACKOFFICE_MAX_DISPUTE_AMOUNT"
        ),
        Param(
            "reason",
            str,
            "Why",
            choices=("unauthorised", "duplicate", "wrong_amount", "not_received", "other"),
        ),
        Param("details", str, "What the customer said", required=False, max_length=1000),
    )
    on_behalf = True
    needs_checker = False
    permission = PERM_ACT_ON_BEHALF
    pending_status = "To Be Disputed"
    done_status = "Dispute Opened"
    notify_customer = True
    customer_messages = {
        "en": (
            "We have opened dispute {dispute_id} for transaction {transaction_id} "
            "({amount}). We will keep you informed."
        ),
        "es": (
            "Hemos abierto la reclamación {dispute_id} por la operación {transaction_id} "
            "({amount}). Le mantendremos informado."
        ),
    }

    @classmethod
    def customer_message_fields(cls, *, language, params, result, at):  # type: ignore[override]
        return dict(params) | {"dispute_id": (result.get("dispute") or {}).get("id", "")}

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        if not _TRANSACTION_ID.fullmatch(params["transaction_id"]):
            raise ValidationFailed(
                "The transaction id may hold letters, digits and . _ : - only.",
                field="params.transaction_id",
                reason="bad_format",
            )

    @classmethod
    async def execute(cls, client, *, bank_user_id, params, idempotency_key):  # type: ignore[override]
        return (
            await client.write(
                user_path(bank_user_id, "disputes"),
                idempotency_key=idempotency_key,
                body={
                    "transaction_id": params["transaction_id"],
                    "amount": params["amount"],
                    "reason": params["reason"],
                    "details": params.get("details", ""),
                },
            )
        ).body

    @classmethod
    def note(cls, *, bank_user_id, params, result):  # type: ignore[override]
        dispute = (result.get("dispute") or {}).get("id", "?")
        return (
            f"Dispute {dispute} opened on behalf of bank user {bank_user_id}: transaction "
            f"{params['transaction_id']}, amount {params['amount']} ({params['reason']})."
        )


@action_register
class StopCheque(ActionType):
    """Stop one cheque, or a series first to last (at most BACKOFFICE_MAX_CHEQUE_SERIES
    cheques), on the customer's behalf (seed 001)."""

    name = "stop_cheque"
    label = "Stop a cheque"
    params = (
        Param("cheque_number", str, "Cheque number (first of a series)", max_length=12),
        Param("last_cheque_number", str, "Last cheque of a series", required=False, max_length=12),
        Param("reason", str, "Why", choices=("lost", "stolen", "payment_cancelled", "other")),
        _NOTE,
    )
    on_behalf = True
    needs_checker = False
    permission = PERM_ACT_ON_BEHALF
    pending_status = "To Be Stopped"
    done_status = "Stopped"
    notify_customer = True
    customer_messages = {
        "en": "We have stopped {cheques} (reference {stop_id}).",
        "es": "Hemos bloqueado {cheques} (referencia {stop_id}).",
    }

    @classmethod
    def customer_message_fields(cls, *, language, params, result, at):  # type: ignore[override]
        first, last = params["cheque_number"], params.get("last_cheque_number")
        series = bool(last and last != first)
        if language == "es":
            cheques = f"los cheques {first} a {last}" if series else f"el cheque {first}"
        else:
            cheques = f"cheques {first} to {last}" if series else f"cheque {first}"
        return {"cheques": cheques, "stop_id": (result.get("stop") or {}).get("id", "")}

    @staticmethod
    def series_max() -> int:
        return int(getattr(settings, "BACKOFFICE_MAX_CHEQUE_SERIES", 50))

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        for name in ("cheque_number", "last_cheque_number"):
            if name in params and not _CHEQUE_NUMBER.fullmatch(params[name]):
                raise ValidationFailed(
                    "A cheque number is 1 to 12 digits.",
                    field=f"params.{name}",
                    reason="not_digits",
                )
        last = params.get("last_cheque_number")
        if last is None:
            return
        first_n, last_n = int(params["cheque_number"]), int(last)
        if last_n < first_n:
            raise ValidationFailed(
                "The last cheque of a series comes after the first.",
                field="params.last_cheque_number",
                reason="series_reversed",
            )
        maximum = cls.series_max()
        if last_n - first_n + 1 > maximum:
            raise ValidationFailed(
                f"A series stops at most {maximum} cheques ({last_n - first_n + 1} asked).",
                field="params.last_cheque_number",
                reason="series_too_long",
                maximum=maximum,
            )

    @classmethod
    async def execute(cls, client, *, bank_user_id, params, idempotency_key):  # type: ignore[override]
        first = params["cheque_number"]
        return (
            await client.write(
                user_path(bank_user_id, "cheques/stop"),
                idempotency_key=idempotency_key,
                body={
                    "first": first,
                    "last": params.get("last_cheque_number", first),
                    "reason": params["reason"],
                },
            )
        ).body

    @classmethod
    def note(cls, *, bank_user_id, params, result):  # type: ignore[override]
        first = params["cheque_number"]
        last = params.get("last_cheque_number")
        which = f"cheques {first} to {last}" if last and last != first else f"cheque {first}"
        return f"Stopped {which} on behalf of bank user {bank_user_id} ({params['reason']})."


# --- payment inquiry and claim cases (seed 002) ---------------------------------------------
#
# A payment contributor (``open_cases``: the contact center) opens the case from the
# conversation; the back office gives it its reference and the hub runs the workflow
# (``backoffice_bridge.cases``: tasks routed to inquiry or claim agents, the claim's debit
# approval).  No checker for opening: the claim's money moves only after its own debit
# approval by a claim agent who neither opened nor investigated it.  Set ``needs_checker``
# to put the opening itself under four eyes too.

PERM_OPEN_CASES = "backoffice_bridge.open_cases"
_CURRENCY = re.compile(r"[A-Z]{3}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class _CaseAmount(AmountParam):
    """An amount that may be left out (``required=False``)."""

    def clean(self, params: dict[str, Any]) -> Any:
        if params.get(self.name) is None and not self.required:
            return None
        return super().clean(params)


class _OpenCase(ActionType):
    """Opening a payment case at the back office; the hub's record and its first task are
    created when the back office answered (``on_done``, inside the outcome's transaction)."""

    case_kind: ClassVar[str]
    needs_checker = False
    permission = PERM_OPEN_CASES
    pending_status = "To Be Opened"
    done_status = "Case Opened"
    customer_messages = {
        "en": 'We opened case {reference} about "{subject}". We will keep you informed here.',
        "es": 'Hemos abierto el caso {reference} sobre "{subject}". Le informaremos por aquí.',
    }

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        if "amount" in params and "currency" not in params:
            raise ValidationFailed(
                "An amount needs its currency.",
                code=ErrorCode.MISSING_FIELD,
                field="params.currency",
                reason="missing",
            )
        if "currency" in params:
            params["currency"] = params["currency"].upper()
            if not _CURRENCY.fullmatch(params["currency"]):
                raise ValidationFailed(
                    "The currency is a three-letter ISO 4217 code (EUR, USD…).",
                    field="params.currency",
                    reason="bad_format",
                )
        reference = params.get("transaction_reference")
        if reference is not None and not _TRANSACTION_ID.fullmatch(reference):
            raise ValidationFailed(
                "The transaction reference may hold letters, digits and . _ : - only.",
                field="params.transaction_reference",
                reason="bad_format",
            )
        raw_date = params.get("transaction_date")
        if raw_date is not None:
            try:
                day = datetime.strptime(raw_date, "%Y-%m-%d").date()
            except ValueError:
                day = None
            if day is None or not _DATE.fullmatch(raw_date):
                raise ValidationFailed(
                    "The transaction date is a date YYYY-MM-DD.",
                    field="params.transaction_date",
                    reason="bad_format",
                )
            from django.utils import timezone

            if day > timezone.localdate():
                raise ValidationFailed(
                    "The transaction date may not be in the future.",
                    field="params.transaction_date",
                    reason="in_the_future",
                )

    @classmethod
    async def execute(cls, client, *, bank_user_id, params, idempotency_key):  # type: ignore[override]
        return (
            await client.write(
                "/api/v1/cases",
                idempotency_key=idempotency_key,
                body={
                    "kind": cls.case_kind,
                    "user_id": bank_user_id,
                    "subject": params["subject"],
                    "details": {k: v for k, v in params.items() if k != "subject"},
                },
            )
        ).body

    @classmethod
    def note(cls, *, bank_user_id, params, result):  # type: ignore[override]
        reference = (result.get("case") or {}).get("id", "?")
        return (
            f"{'Payment inquiry' if cls.case_kind == 'inquiry' else 'Claim'} case {reference} "
            f"opened for bank user {bank_user_id}: {params['subject']}."
        )

    @classmethod
    def customer_message_fields(cls, *, language, params, result, at):  # type: ignore[override]
        return dict(params) | {"reference": (result.get("case") or {}).get("id", "")}

    @classmethod
    def on_done(cls, *, req: Any, result: dict[str, Any], at: datetime) -> None:
        """The hub's case record, its first task routed (``cases.case_record_opened``)."""
        from backoffice_bridge.cases import case_record_opened

        case_record_opened(request=req, result=result, kind=cls.case_kind, at=at)


_SUBJECT = Param("subject", str, "Subject", max_length=200)
_CURRENCY_PARAM = Param("currency", str, "Currency (ISO 4217)", required=False, max_length=3)
_TRANSACTION_DATE = Param(
    "transaction_date", str, "Transaction date (YYYY-MM-DD)", required=False, max_length=10
)
_CASE_DETAILS = Param("details", str, "What the customer said", required=False, max_length=2000)


@action_register
class PaymentInquiry(_OpenCase):
    """A payment inquiry case: where is a payment, why was it charged (seed 002)."""

    name = "payment_inquiry"
    label = "Open a payment inquiry case"
    case_kind = "inquiry"
    params = (
        _SUBJECT,
        _CaseAmount(
            "amount",
            str,
            "Amount",
            required=False,
            maximum_setting="BACKOFFICE_MAX_CASE_AMOUNT",
        ),
        _CURRENCY_PARAM,
        Param("transaction_reference", str, "Transaction reference", required=False, max_length=64),
        _TRANSACTION_DATE,
        _CASE_DETAILS,
    )


@action_register
class PaymentClaim(_OpenCase):
    """A claim case: the customer claims a transaction's amount back; credited after a
    claim agent's debit approval (seed 002)."""

    name = "payment_claim"
    label = "Open a claim case"
    case_kind = "claim"
    params = (
        _SUBJECT,
        _CaseAmount("amount", str, "Claimed amount", maximum_setting="BACKOFFICE_MAX_CASE_AMOUNT"),
        Param("currency", str, "Currency (ISO 4217)", max_length=3),
        Param("transaction_reference", str, "Transaction reference", max_length=64),
        _TRANSACTION_DATE,
        _CASE_DETAILS,
    )
