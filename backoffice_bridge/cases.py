"""Payment case services (writes): the workflow of payment inquiry and claim cases
(seed 002) once the back office opened them, task routing by the payment admin's
assignment rules, connectors' managed accounts and the claim's debit approval.

    inquiry: investigate ──▶ respond ──▶ resolved (answered)
    claim:   investigate ──▶ debit approval ──approve──▶ settle ──▶ resolved (credited)
                                   └──────reject──────────────────▶ resolved (declined)

A case is opened by an action request (``payment_inquiry`` / ``payment_claim``, no
checker): when the back office answered, ``case_record_opened`` runs inside the outcome's
transaction (``ActionType.on_done``), saves the hub's ``Case`` and routes its first task.
Each next task is created and routed when the previous one completes.

Routing (``_route``): the first assignment rule (by position) whose every criterion
matches decides the target — a role group or one agent — and the task goes to the least
loaded eligible agent of that target; no rule matches → every agent holding the task's
permission.  Eligible: active, holds the task's permission, a connector only for the
accounts they manage, and for the debit approval neither the case's opener nor anyone who
worked an earlier task (four eyes).  Nobody eligible → the task waits ``queued`` for any
eligible agent to take it.

Steps that change the case at the back office (the last task, the debit decision) call it
**before** their transaction — never inside one — with a key per task
(``<request key>:task:<id>``) and a body that depends on the step only, then record the
step under row locks after checking again.  So a retry (a lost answer, a 5xx, the same
agent again) is answered by the back office's idempotency and never acts twice, and a
back office that does not answer leaves the hub unchanged (503).

Every change appends an audit entry (``case.*``) and then the console event
``backoffice.case`` on the conversation (``services._announce``), with an internal
``note`` when the case's state changed; every refusal is audited (``_audited``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from backoffice_bridge.audit import actor_role_label, audit_append
from backoffice_bridge.case_selectors import (
    AGENT_PERMISSIONS,
    WORKFLOWS,
    access_case_task,
    account_dict,
    case_detail_dict,
    case_dict,
    is_connector,
    managed_accounts,
    permission_holders,
    require_payment_admin,
    rule_dict,
    rules_ordered,
    task_permission,
)
from backoffice_bridge.client import BackofficeError, backoffice_call
from backoffice_bridge.models import (
    ActionRequest,
    AgentAccount,
    Case,
    CaseKind,
    CaseResolution,
    CaseState,
    CaseTask,
    TaskAssignmentRule,
    TaskKind,
    TaskState,
)
from backoffice_bridge.selectors import staff_label
from backoffice_bridge.services import _announce, _translate
from chat.models import ConversationStatus
from hub.exceptions import Conflict, HubError, NotFound, PermissionDenied, ValidationFailed
from hub.roles import (
    PERM_APPROVE_DEBITS,
    PERM_MANAGE_CASE_RULES,
    PERM_MANAGED_ACCOUNTS_ONLY,
    PERM_WORK_CLAIM_TASKS,
    PERM_WORK_INQUIRY_TASKS,
)

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

NOTE_MAX = 2000
CUSTOMER_MESSAGE_MAX = 1000
#: The step after each task (None: the case is resolved by it).
_NEXT: dict[tuple[str, str], str | None] = {
    (CaseKind.INQUIRY, TaskKind.INVESTIGATE): TaskKind.RESPOND,
    (CaseKind.INQUIRY, TaskKind.RESPOND): None,
    (CaseKind.CLAIM, TaskKind.INVESTIGATE): TaskKind.DEBIT_APPROVAL,
    (CaseKind.CLAIM, TaskKind.SETTLE): None,
}
_RESOLUTION = {TaskKind.RESPOND: CaseResolution.ANSWERED, TaskKind.SETTLE: CaseResolution.CREDITED}


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


# --- audit -----------------------------------------------------------------------------------


def role_label(actor: AbstractBaseUser | None) -> str | None:
    """The actor's role for the audit log, naming the payment roles the hub's staff roles
    do not cover (agents need not handle conversations).  None: the hub itself."""
    if actor is None:
        return None
    label = actor_role_label(actor)
    if label not in ("none", "Operator"):
        return label
    suffix = " connector" if is_connector(actor) else ""
    if actor.has_perm(PERM_WORK_CLAIM_TASKS) or actor.has_perm(PERM_APPROVE_DEBITS):
        return f"Claim agent{suffix}"
    if actor.has_perm(PERM_WORK_INQUIRY_TASKS):
        return f"Inquiry agent{suffix}"
    if actor.has_perm(PERM_MANAGE_CASE_RULES):
        return "Payment admin"
    return label


def _case_state(case: Case) -> dict[str, Any]:
    return {"state": case.state, "resolution": case.resolution}


def _task_state(task: CaseTask) -> dict[str, Any]:
    return {
        "kind": task.kind,
        "state": task.state,
        "assignee_id": task.assignee_id,
        "outcome": task.outcome,
    }


def _audit(
    action: str,
    case: Case,
    *,
    actor: AbstractBaseUser | None,
    before: Any,
    after: Any,
    task: CaseTask | None = None,
) -> None:
    audit_append(
        action=action,
        actor=actor,
        actor_role=role_label(actor),
        conversation_id=case.conversation_id,
        on_behalf_of=case.bank_user_id,
        object_type="task" if task is not None else "case",
        object_id=task.pk if task is not None else case.pk,
        request_id=case.request_id,
        before=before,
        after=after,
    )


#: Arguments of a refused call worth keeping with the refusal.
_ATTEMPT_ARGS = (
    "task_id",
    "rule_id",
    "agent_id",
    "bank_user_id",
    "reason",
    "data",
    "note",
    "customer_message",
)


def _audit_refusal(action: str, error: HubError, kwargs: dict[str, Any]) -> None:
    actor = kwargs.get("actor")
    actor = actor if isinstance(actor, AbstractBaseUser) else None
    case = None
    task_id = kwargs.get("task_id")
    if task_id is not None:
        try:
            case = (
                Case.objects.filter(tasks__pk=int(task_id))
                .only("pk", "conversation_id", "bank_user_id", "request_id")
                .first()
            )
        except (TypeError, ValueError, OverflowError):
            case = None
    attempt = {name: kwargs[name] for name in _ATTEMPT_ARGS if kwargs.get(name) is not None}
    object_type, object_id = "", ""
    for name, kind in (("task_id", "task"), ("rule_id", "rule"), ("agent_id", "agent")):
        if kwargs.get(name) is not None:
            object_type, object_id = kind, str(kwargs[name])[:64]
            break
    with transaction.atomic():
        audit_append(
            action=action,
            actor=actor,
            actor_role=role_label(actor),
            conversation_id=case.conversation_id if case else "",
            on_behalf_of=case.bank_user_id if case else str(kwargs.get("bank_user_id") or "")[:64],
            object_type=object_type,
            object_id=object_id,
            request_id=case.request_id if case else None,
            after={"error": error.as_dict(), "attempt": attempt},
            outcome="refused",
        )


def _audited(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A refused attempt (any HubError) is audited with the error, then re-raised."""

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @wraps(func)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except HubError as exc:
                _audit_refusal(action, exc, dict(kwargs))
                raise

        return inner

    return wrap


# --- announcing --------------------------------------------------------------------------------


def _announce_case(case: Case, *, note: str = "") -> dict[str, Any]:
    """``backoffice.case`` on the conversation (the last write of the transaction); a
    state change carries an internal note, like an action's outcome."""
    payload: dict[str, Any] = {"case": case_dict(case)}
    if note:
        payload |= {"note": note, "visibility": "internal"}
    _announce("backoffice.case", conversation_id=case.conversation_id, payload=payload)
    return payload


def _who(task: CaseTask) -> str:
    label = staff_label(task.assignee)
    return label["name"] if label else "the queue (no eligible agent)"


# --- routing -----------------------------------------------------------------------------------


def _rule_matches(rule: TaskAssignmentRule, case: Case, task_kind: str) -> bool:
    if rule.case_kind and rule.case_kind != case.kind:
        return False
    if rule.task_kind and rule.task_kind != task_kind:
        return False
    if rule.currency and rule.currency != case.currency:
        return False
    if rule.bank_user_id and rule.bank_user_id != case.bank_user_id:
        return False
    if rule.min_amount is not None and (case.amount is None or case.amount < rule.min_amount):
        return False
    return not (
        rule.max_amount is not None and (case.amount is None or case.amount > rule.max_amount)
    )


def _four_eyes(case: Case, task_kind: str) -> set[int]:
    """Who may not take a debit approval: the case's opener and whoever worked an earlier
    task of it."""
    if task_kind != TaskKind.DEBIT_APPROVAL:
        return set()
    workers = CaseTask.objects.filter(case_id=case.pk).exclude(kind=task_kind)
    excluded = {case.opened_by_id}
    excluded |= {pk for pk in workers.values_list("completed_by_id", flat=True) if pk}
    excluded |= {pk for pk in workers.values_list("assignee_id", flat=True) if pk}
    return excluded


def _eligible(case: Case, task_kind: str, *, rule: TaskAssignmentRule | None) -> list[int]:
    """Ids of the agents who may receive the task under ``rule`` (None: the default)."""
    candidates = permission_holders(task_permission(case.kind, task_kind))
    if rule is not None and rule.target_agent_id is not None:
        candidates = candidates.filter(pk=rule.target_agent_id)
    elif rule is not None:
        candidates = candidates.filter(groups__name=rule.target_role)
    ids = set(candidates.values_list("pk", flat=True))
    connectors = set(
        permission_holders(PERM_MANAGED_ACCOUNTS_ONLY)
        .filter(pk__in=ids, is_superuser=False)
        .values_list("pk", flat=True)
    )
    if connectors:
        managing = set(
            AgentAccount.objects.filter(
                bank_user_id=case.bank_user_id, agent_id__in=connectors
            ).values_list("agent_id", flat=True)
        )
        ids -= connectors - managing
    return sorted(ids - _four_eyes(case, task_kind))


def _least_loaded(ids: list[int]) -> int:
    loads = dict(
        CaseTask.objects.filter(
            assignee_id__in=ids, state__in=[TaskState.ASSIGNED, TaskState.IN_PROGRESS]
        )
        .values("assignee_id")
        .annotate(n=Count("id"))
        .values_list("assignee_id", "n")
    )
    return min(ids, key=lambda pk: (loads.get(pk, 0), pk))


def _route(task: CaseTask, case: Case, *, at: datetime) -> None:
    """Assign ``task`` (unsaved) by the first matching rule, or the default."""
    rule = next((r for r in rules_ordered() if _rule_matches(r, case, task.kind)), None)
    ids = _eligible(case, task.kind, rule=rule)
    task.rule = rule
    task.routed_by = f"rule {rule.position} '{rule.name}'" if rule is not None else "default"
    if ids:
        task.assignee_id = _least_loaded(ids)
        task.state = TaskState.ASSIGNED
        task.assigned_at = at
    else:
        task.assignee = None
        task.state = TaskState.QUEUED
        task.assigned_at = None
        task.routed_by = f"{task.routed_by}: no eligible agent"


def _task_create(case: Case, kind: str, *, at: datetime) -> CaseTask:
    task = CaseTask(case=case, kind=kind, position=WORKFLOWS[case.kind].index(kind) + 1)
    task.created_at = at
    _route(task, case, at=at)
    task.save()
    _audit(
        "case.task_assign",
        case,
        actor=None,
        before=None,
        after=_task_state(task) | {"routed_by": task.routed_by, "rule_id": task.rule_id},
        task=task,
    )
    return task


def _state_for(task: CaseTask) -> str:
    """The case's state while ``task`` is its current one."""
    if task.kind == TaskKind.DEBIT_APPROVAL:
        return CaseState.AWAITING_DEBIT_APPROVAL
    if task.state == TaskState.IN_PROGRESS:
        return CaseState.IN_PROGRESS
    return CaseState.OPEN


def _case_save(case: Case, *, at: datetime) -> None:
    case.updated_at = at
    case.save(update_fields=["state", "resolution", "updated_at", "resolved_at"])


# --- opening -------------------------------------------------------------------------------


def case_record_opened(
    *, request: ActionRequest, result: dict[str, Any], kind: str, at: datetime
) -> Case | None:
    """The hub's record of a case the back office just opened for ``request``, and its
    first task routed; audited (``case.open``, ``case.task_assign``) and announced.
    Runs inside the transaction that records the request's outcome; recording twice keeps
    the first.  None when the back office's answer carries no case id (logged)."""
    existing = Case.objects.filter(request=request).first()
    if existing is not None:
        return existing
    answer = result.get("case") if isinstance(result.get("case"), dict) else {}
    reference = str(answer.get("id") or "")[:64]
    if not reference:
        logger.error("request %s: the back office opened a case without an id", request.pk)
        return None
    params = dict(request.params)
    amount = Decimal(params["amount"]) if params.get("amount") else None
    case = Case.objects.create(
        request=request,
        reference=reference,
        kind=kind,
        state=CaseState.OPEN,
        subject=params.get("subject", "")[:200],
        params=params,
        amount=amount,
        currency=params.get("currency", ""),
        bank_user_id=request.bank_user_id,
        conversation_id=request.conversation_id,
        customer_id=request.customer_id,
        opened_by_id=request.maker_id,
        opened_at=at,
        updated_at=at,
    )
    _audit(
        "case.open",
        case,
        actor=request.maker,
        before=None,
        after=_case_state(case) | {"reference": reference, "kind": kind, "params": params},
    )
    first = _task_create(case, WORKFLOWS[kind][0], at=at)
    _announce_case(
        case,
        note=(
            f"{CaseKind(kind).label} case {reference} opened: {case.subject}. "
            f"{TaskKind(first.kind).label} → {_who(first)}."
        ),
    )
    return case


# --- agents: pick up, complete, debit decision ------------------------------------------------


def _check_worker(actor: AbstractBaseUser, task: CaseTask) -> None:
    """The refusals every agent step shares (the case's visibility was checked by
    ``access_case_task``, connectors' accounts included)."""
    case = task.case
    if case.state == CaseState.RESOLVED or task.state == TaskState.DONE:
        raise Conflict(
            "This task is done.",
            reason="task_done",
            task_id=task.pk,
            case_state=case.state,
        )
    if not actor.has_perm(task_permission(case.kind, task.kind)):
        raise PermissionDenied(
            f"You do not work on '{TaskKind(task.kind).label}' tasks of "
            f"{CaseKind(case.kind).label.lower()} cases.",
            reason="not_an_agent",
            task_id=task.pk,
        )
    if is_connector(actor) and case.bank_user_id not in managed_accounts(actor):
        raise PermissionDenied(
            "You work only on cases of the bank accounts you manage.",
            reason="account_not_managed",
            bank_user_id=case.bank_user_id,
        )
    if actor.pk in _four_eyes(case, task.kind):
        raise PermissionDenied(
            "Four eyes: the debit is approved by someone who neither opened the case nor "
            "worked on it.",
            reason="four_eyes",
            task_id=task.pk,
        )
    if task.assignee_id is not None and task.assignee_id != actor.pk:
        raise Conflict(
            "This task is assigned to another agent.",
            reason="assigned_to_other",
            task_id=task.pk,
            assignee=staff_label(task.assignee),
        )


def _take(actor: AbstractBaseUser, task: CaseTask, *, at: datetime) -> bool:
    """Start the task as ``actor`` (assigned to them, or queued); False when already."""
    if task.state == TaskState.IN_PROGRESS:
        return False
    task.assignee = actor
    task.assigned_at = task.assigned_at or at
    task.state = TaskState.IN_PROGRESS
    task.started_at = at
    task.save(update_fields=["assignee", "assigned_at", "state", "started_at"])
    return True


@_audited("case.task_claim")
def case_task_claim(
    *, actor: AbstractBaseUser, task_id: Any, now: datetime | None = None
) -> dict[str, Any]:
    """An agent picks up a task routed to them, or a queued one they may work; picking up
    what one holds returns the case.  ``backoffice.case``.

    Errors: NotFound (task, or not theirs to see); PermissionDenied ``reason``
    not_an_agent, account_not_managed (a connector), four_eyes (a debit approval by the
    opener or an earlier task's worker); Conflict ``reason`` task_done or
    assigned_to_other (with ``assignee``).
    """
    at = _now(now)
    with transaction.atomic():
        task = access_case_task(actor=actor, task_id=task_id, lock=True)
        _check_worker(actor, task)
        case = task.case
        before = _task_state(task)
        if not _take(actor, task, at=at):
            return case_detail_dict(case)
        old_state = case.state
        case.state = _state_for(task)
        _case_save(case, at=at)
        _audit(
            "case.task_claim", case, actor=actor, before=before, after=_task_state(task), task=task
        )
        name = staff_label(actor)["name"]  # type: ignore[index]
        note = ""
        if case.state != old_state:
            note = (
                f"Case {case.reference}: {TaskKind(task.kind).label.lower()} picked up by {name}."
            )
        _announce_case(case, note=note)
    return case_detail_dict(case)


def _text(value: Any, *, name: str, maximum: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"'{name}' must be a string.", field=name, reason="wrong_type")
    value = value.strip()
    if len(value) > maximum:
        raise ValidationFailed(
            f"'{name}' is longer than {maximum} characters.",
            field=name,
            reason="too_long",
            max_length=maximum,
        )
    return value


def _check_customer_message(task: CaseTask, message: str, *, resolves: bool) -> None:
    if not message:
        return
    if not resolves:
        raise ValidationFailed(
            "A message to the customer goes with the step that resolves the case.",
            field="customer_message",
            reason="not_resolving",
        )
    if task.case.conversation.status == ConversationStatus.CLOSED:
        raise Conflict(
            "The conversation is closed: the customer cannot be told here.",
            reason="conversation_closed",
            field="customer_message",
        )


def _state_path(reference: str) -> str:
    return f"/api/v1/cases/{quote(reference, safe='')}/state"


def _backoffice_step(case: Case, task: CaseTask, body: dict[str, Any]) -> dict[str, Any]:
    """Move the case at the back office (outside any transaction); the key is the task's,
    so a retry of the same step is replayed, never acted twice."""
    key = f"{case.request.idempotency_key}:task:{task.pk}"
    try:
        answer = backoffice_call(
            lambda c: c.write(_state_path(case.reference), idempotency_key=key, body=body)
        )
    except BackofficeError as exc:
        raise _translate(exc, field="case") from None
    return answer.body


def _task_finish(
    actor: AbstractBaseUser,
    task_id: int,
    *,
    at: datetime,
    outcome: str,
    note: str,
    action: str,
    note_key: str,
) -> CaseTask:
    """Inside the caller's transaction, after the back office answered: lock the task again
    and re-check the worker (it was called outside any lock), take it if still unclaimed,
    mark it done with ``outcome`` and ``note``, and audit ``action`` (the note under
    ``note_key``)."""
    task = access_case_task(actor=actor, task_id=task_id, lock=True)
    _check_worker(actor, task)
    _take(actor, task, at=at)
    before = _task_state(task)
    task.state = TaskState.DONE
    task.completed_at = at
    task.completed_by = actor
    task.outcome = outcome
    task.note = note
    task.save(update_fields=["state", "completed_at", "completed_by", "outcome", "note"])
    _audit(
        action,
        task.case,
        actor=actor,
        before=before,
        after=_task_state(task) | {note_key: note},
        task=task,
    )
    return task


def _prepare(actor: AbstractBaseUser, task_id: Any) -> CaseTask:
    """The checks before a back-office call, without locks (they run again under them)."""
    task = access_case_task(actor=actor, task_id=task_id)
    task.case.request = ActionRequest.objects.only("idempotency_key").get(pk=task.case.request_id)
    _check_worker(actor, task)
    return task


def _resolve(
    case: Case,
    *,
    resolution: str,
    at: datetime,
    actor: AbstractBaseUser,
    customer_message: str,
) -> None:
    before = _case_state(case)
    case.state = CaseState.RESOLVED
    case.resolution = resolution
    case.resolved_at = at
    _case_save(case, at=at)
    _audit(
        "case.resolve",
        case,
        actor=actor,
        before=before,
        after=_case_state(case) | {"customer_message": customer_message or None},
    )
    if customer_message:  # after the audit: its lock comes before the event log's
        from chat.services import system_message_send

        system_message_send(conversation=case.conversation, text=customer_message)


@_audited("case.task_complete")
def case_task_complete(
    *,
    actor: AbstractBaseUser,
    task_id: Any,
    note: Any = None,
    customer_message: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An agent completes a task (picking it up implicitly): the next task is created and
    routed, or — respond, settle — the case is resolved at the back office first (outside
    any transaction) and then in the hub, with an optional message to the customer in the
    conversation.  ``backoffice.case`` with an internal note.

    Errors: those of ``case_task_claim``; Conflict ``reason`` debit_decision_required (a
    debit approval is approved or rejected, not completed) or conversation_closed (a
    customer message); ValidationFailed (``note``, ``customer_message`` too long, or a
    message with a step that does not resolve the case); BackofficeUnavailableError (503:
    nothing changed, try again) or BackofficeRefusedError.
    """
    note = _text(note, name="note", maximum=NOTE_MAX)
    message = _text(customer_message, name="customer_message", maximum=CUSTOMER_MESSAGE_MAX)
    task = _prepare(actor, task_id)
    case = task.case
    if task.kind == TaskKind.DEBIT_APPROVAL:
        raise Conflict(
            "A debit approval is approved or rejected, not completed.",
            reason="debit_decision_required",
            task_id=task.pk,
        )
    following = _NEXT[(case.kind, task.kind)]
    _check_customer_message(task, message, resolves=following is None)
    if following is None:
        _backoffice_step(case, task, {"state": "resolved", "resolution": _RESOLUTION[task.kind]})
    at = _now(now)
    with transaction.atomic():
        task = _task_finish(
            actor,
            task.pk,
            at=at,
            outcome="completed",
            note=note,
            action="case.task_complete",
            note_key="note",
        )
        case = task.case
        label = TaskKind(task.kind).label
        name = staff_label(actor)["name"]  # type: ignore[index]
        if following is None:
            _resolve(
                case,
                resolution=_RESOLUTION[task.kind],
                at=at,
                actor=actor,
                customer_message=message,
            )
            text = f"Case {case.reference} resolved ({case.resolution}) by {name}."
        else:
            nxt = _task_create(case, following, at=at)
            case.state = _state_for(nxt)
            _case_save(case, at=at)
            text = (
                f"Case {case.reference}: {label.lower()} done by {name}. "
                f"{TaskKind(nxt.kind).label} → {_who(nxt)}."
            )
        if note:
            text = f"{text} Note: {note}"
        _announce_case(case, note=text)
    return case_detail_dict(case)


def _debit_decide(
    *,
    actor: AbstractBaseUser,
    task_id: Any,
    approve: bool,
    reason: str,
    customer_message: str,
    now: datetime | None,
) -> dict[str, Any]:
    task = _prepare(actor, task_id)
    case = task.case
    if task.kind != TaskKind.DEBIT_APPROVAL:
        raise Conflict(
            "Only a claim's debit approval task is approved or rejected.",
            reason="not_a_debit_approval",
            task_id=task.pk,
        )
    _check_customer_message(task, customer_message, resolves=not approve)
    body = (
        {"state": "debit_approved"}
        if approve
        else {"state": "resolved", "resolution": CaseResolution.DECLINED.value}
    )
    _backoffice_step(case, task, body)
    at = _now(now)
    with transaction.atomic():
        task = _task_finish(
            actor,
            task.pk,
            at=at,
            outcome="approved" if approve else "rejected",
            note=reason,
            action="case.debit_approve" if approve else "case.debit_reject",
            note_key="reason",
        )
        case = task.case
        name = staff_label(actor)["name"]  # type: ignore[index]
        if approve:
            settle = _task_create(case, TaskKind.SETTLE, at=at)
            case.state = _state_for(settle)
            _case_save(case, at=at)
            text = (
                f"Case {case.reference}: debit of {case.amount} {case.currency} approved by "
                f"{name}. {TaskKind.SETTLE.label} → {_who(settle)}."
            )
        else:
            _resolve(
                case,
                resolution=CaseResolution.DECLINED,
                at=at,
                actor=actor,
                customer_message=customer_message,
            )
            text = (
                f"Case {case.reference}: debit rejected by {name} ({reason}); "
                "the claim is declined and the case resolved."
            )
        _announce_case(case, note=text)
    return case_detail_dict(case)


@_audited("case.debit_approve")
def case_debit_approve(
    *, actor: AbstractBaseUser, task_id: Any, note: Any = None, now: datetime | None = None
) -> dict[str, Any]:
    """A claim agent approves the claim's debit (four eyes: not the case's opener, not who
    worked an earlier task): the back office records it first, then the settle task is
    created and routed.  ``backoffice.case``.

    Errors: those of ``case_task_claim`` (``four_eyes`` among them); Conflict
    ``not_a_debit_approval``; ValidationFailed (``note``); the back office's (503/422).
    """
    reason = _text(note, name="note", maximum=NOTE_MAX)
    return _debit_decide(
        actor=actor, task_id=task_id, approve=True, reason=reason, customer_message="", now=now
    )


@_audited("case.debit_reject")
def case_debit_reject(
    *,
    actor: AbstractBaseUser,
    task_id: Any,
    reason: Any,
    customer_message: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A claim agent rejects the debit with a reason: the claim is declined and the case
    resolved (back office first), with an optional message to the customer.

    Errors: those of ``case_debit_approve``; ValidationFailed ``reason`` missing.
    """
    text = _text(reason, name="reason", maximum=NOTE_MAX)
    if not text:
        raise ValidationFailed(
            "Rejecting a debit needs a reason.", field="reason", reason="missing"
        )
    message = _text(customer_message, name="customer_message", maximum=CUSTOMER_MESSAGE_MAX)
    return _debit_decide(
        actor=actor,
        task_id=task_id,
        approve=False,
        reason=text,
        customer_message=message,
        now=now,
    )


# --- assignment rules (payment admins) ----------------------------------------------------------

_RULE_FIELDS = (
    "name",
    "position",
    "case_kind",
    "task_kind",
    "min_amount",
    "max_amount",
    "currency",
    "bank_user_id",
    "target_role",
    "target_agent_id",
)
_CURRENCY = re.compile(r"[A-Z]{3}")


def _choice(data: dict[str, Any], name: str, choices: list[str]) -> str:
    value = data.get(name)
    if value in (None, ""):
        return ""
    if value not in choices:
        raise ValidationFailed(
            f"'{name}' must be one of: {', '.join(choices)} (or null: any).",
            field=name,
            reason="not_a_choice",
            choices=choices,
        )
    return str(value)


def _amount(data: dict[str, Any], name: str) -> Decimal | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationFailed(f"'{name}' must be an amount.", field=name, reason="wrong_type")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationFailed(
            f"'{name}' must be an amount.", field=name, reason="wrong_type"
        ) from None
    if not amount.is_finite():
        raise ValidationFailed(f"'{name}' must be an amount.", field=name, reason="wrong_type")
    if amount < 0:
        raise ValidationFailed(f"'{name}' may not be negative.", field=name, reason="negative")
    if -amount.as_tuple().exponent > 2 or amount >= Decimal("1e12"):  # type: ignore[operator]
        raise ValidationFailed(
            f"'{name}' has more than two decimals or is too large.",
            field=name,
            reason="out_of_range",
        )
    return amount.quantize(Decimal("0.01"))


def _agent_roles() -> list[str]:
    """Groups whose members may receive tasks (what a rule may target)."""
    names: set[str] = set()
    for perm in AGENT_PERMISSIONS:
        app_label, codename = perm.split(".")
        names |= set(
            Group.objects.filter(
                permissions__content_type__app_label=app_label, permissions__codename=codename
            ).values_list("name", flat=True)
        )
    return sorted(names)


def _rule_clean(data: Any) -> dict[str, Any]:
    """A rule's fields from the API's object, each refused precisely."""
    if not isinstance(data, dict):
        raise ValidationFailed("The rule must be an object.", field="rule", reason="wrong_type")
    unknown = sorted(set(data) - set(_RULE_FIELDS))
    if unknown:
        raise ValidationFailed(
            f"Unknown field '{unknown[0]}'.", field=unknown[0], reason="unknown_field"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("A rule needs a name.", field="name", reason="missing")
    if len(name.strip()) > 100:
        raise ValidationFailed("'name' is longer than 100.", field="name", reason="too_long")
    position = data.get("position")
    if position is not None and (
        isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= 10_000
    ):
        raise ValidationFailed(
            "'position' is an integer from 1 to 10000.", field="position", reason="out_of_range"
        )
    case_kind = _choice(data, "case_kind", list(CaseKind.values))
    task_kind = _choice(data, "task_kind", list(TaskKind.values))
    if case_kind and task_kind and task_kind not in WORKFLOWS[case_kind]:
        raise ValidationFailed(
            f"A {case_kind} case has no '{task_kind}' task.",
            field="task_kind",
            reason="not_for_case_kind",
            choices=list(WORKFLOWS[case_kind]),
        )
    low, high = _amount(data, "min_amount"), _amount(data, "max_amount")
    if low is not None and high is not None and low > high:
        raise ValidationFailed(
            "'min_amount' is above 'max_amount'.", field="max_amount", reason="range_reversed"
        )
    currency = data.get("currency") or ""
    if not isinstance(currency, str) or (currency and not _CURRENCY.fullmatch(currency.upper())):
        raise ValidationFailed(
            "'currency' is a three-letter ISO 4217 code.", field="currency", reason="bad_format"
        )
    bank_user_id = data.get("bank_user_id") or ""
    if not isinstance(bank_user_id, str) or len(bank_user_id) > 64:
        raise ValidationFailed(
            "'bank_user_id' is a string of 64 characters at most.",
            field="bank_user_id",
            reason="wrong_type",
        )
    role = data.get("target_role") or ""
    agent_id = data.get("target_agent_id")
    if bool(role) == (agent_id is not None):
        raise ValidationFailed(
            "A rule targets either a role (target_role) or one agent (target_agent_id).",
            field="target_role",
            reason="one_target",
        )
    agent = None
    if role:
        roles = _agent_roles()
        if role not in roles:
            raise ValidationFailed(
                f"Unknown role {role!r}: no group of agents has this name.",
                field="target_role",
                reason="unknown_role",
                choices=roles,
            )
    else:
        if isinstance(agent_id, bool) or not isinstance(agent_id, int):
            raise ValidationFailed(
                "'target_agent_id' must be a user id.", field="target_agent_id", reason="wrong_type"
            )
        agent = get_user_model().objects.filter(pk=agent_id, is_active=True).first()
        if agent is None:
            raise ValidationFailed(
                f"No active user {agent_id}.", field="target_agent_id", reason="unknown_agent"
            )
        if not any(agent.has_perm(p) for p in AGENT_PERMISSIONS):
            raise ValidationFailed(
                "This user works on no case tasks.",
                field="target_agent_id",
                reason="not_an_agent",
            )
    return {
        "name": name.strip(),
        "position": position,
        "case_kind": case_kind,
        "task_kind": task_kind,
        "min_amount": low,
        "max_amount": high,
        "currency": currency.upper(),
        "bank_user_id": bank_user_id.strip(),
        "target_role": role,
        "target_agent": agent,
    }


def _audit_rule(
    action: str, rule: TaskAssignmentRule, *, actor: AbstractBaseUser, before: Any, after: Any
) -> None:
    audit_append(
        action=action,
        actor=actor,
        actor_role=role_label(actor),
        object_type="rule",
        object_id=rule.pk,
        before=before,
        after=after,
    )


@_audited("case.rule_create")
def case_rule_create(
    *, actor: AbstractBaseUser, data: Any, now: datetime | None = None
) -> dict[str, Any]:
    """A payment admin adds an assignment rule (at ``position``, default last; the rules
    from there move down one).  Applies to tasks routed from now on.

    Errors: PermissionDenied (not a payment admin); ValidationFailed on the named field
    (``reason`` unknown_field, missing, not_a_choice, not_for_case_kind, negative,
    range_reversed, bad_format, one_target, unknown_role, unknown_agent, not_an_agent).
    """
    require_payment_admin(actor)
    fields = _rule_clean(data)
    at = _now(now)
    with transaction.atomic():
        rules = list(TaskAssignmentRule.objects.select_for_update().order_by("position", "id"))
        position = fields.pop("position") or len(rules) + 1
        position = min(position, len(rules) + 1)
        rule = TaskAssignmentRule(
            **fields,
            position=position,
            created_by=actor,
            created_at=at,
            updated_by=actor,
            updated_at=at,
        )
        _renumber([r for r in rules], insert=rule)
        _audit_rule("case.rule_create", rule, actor=actor, before=None, after=rule_dict(rule))
    return rule_dict(rule)


def _renumber(rules: list[TaskAssignmentRule], *, insert: TaskAssignmentRule | None) -> None:
    """Positions 1…n with ``insert`` placed at its position (saved)."""
    ordered = list(rules)
    if insert is not None:
        ordered.insert(insert.position - 1, insert)
    for index, rule in enumerate(ordered, start=1):
        if rule.pk is None or rule.position != index or rule is insert:
            rule.position = index
            rule.save()


@_audited("case.rule_update")
def case_rule_update(
    *, actor: AbstractBaseUser, rule_id: Any, data: Any, now: datetime | None = None
) -> dict[str, Any]:
    """Replace a rule (every field, as for a create; ``position`` moves it).

    Errors: those of ``case_rule_create``; NotFound (rule).
    """
    require_payment_admin(actor)
    fields = _rule_clean(data)
    at = _now(now)
    with transaction.atomic():
        rules = list(TaskAssignmentRule.objects.select_for_update().order_by("position", "id"))
        rule = next((r for r in rules if str(r.pk) == str(rule_id)), None)
        if rule is None:
            raise NotFound("No such rule.", rule_id=str(rule_id))
        before = rule_dict(rule)
        others = [r for r in rules if r.pk != rule.pk]
        position = fields.pop("position") or rule.position
        for name, value in fields.items():
            setattr(rule, name, value)
        rule.position = min(position, len(others) + 1)
        rule.updated_by = actor
        rule.updated_at = at
        _renumber(others, insert=rule)
        _audit_rule("case.rule_update", rule, actor=actor, before=before, after=rule_dict(rule))
    return rule_dict(rule)


@_audited("case.rule_delete")
def case_rule_delete(*, actor: AbstractBaseUser, rule_id: Any) -> dict[str, Any]:
    """Delete a rule (tasks it routed keep ``routed_by``); the others close up.

    Errors: PermissionDenied; NotFound.
    """
    require_payment_admin(actor)
    with transaction.atomic():
        rules = list(TaskAssignmentRule.objects.select_for_update().order_by("position", "id"))
        rule = next((r for r in rules if str(r.pk) == str(rule_id)), None)
        if rule is None:
            raise NotFound("No such rule.", rule_id=str(rule_id))
        before = rule_dict(rule)
        _audit_rule("case.rule_delete", rule, actor=actor, before=before, after=None)
        others = [r for r in rules if r.pk != rule.pk]
        rule.delete()
        _renumber(others, insert=None)
    return before


# --- connectors' managed accounts (payment admins) -------------------------------------------


def _connector(agent_id: Any) -> AbstractBaseUser:
    try:
        pk = int(agent_id)
    except (TypeError, ValueError):
        raise NotFound("No such agent.", agent_id=str(agent_id)) from None
    agent = get_user_model().objects.filter(pk=pk).first()
    if agent is None:
        raise NotFound("No such agent.", agent_id=pk)
    if not is_connector(agent):
        raise ValidationFailed(
            "Only connector agents manage accounts (give them a connector role first).",
            field="agent_id",
            reason="not_a_connector",
        )
    return agent


@_audited("case.account_add")
def agent_account_add(
    *, actor: AbstractBaseUser, agent_id: Any, bank_user_id: Any, now: datetime | None = None
) -> dict[str, Any]:
    """A payment admin gives a connector an account (bank user) to manage — checked at the
    back office first, outside any transaction; adding it again returns it.  Queued tasks
    of that account are not re-routed: the connector takes them from the queue.

    Errors: PermissionDenied; NotFound (agent; the bank user: ``field`` bank_user_id);
    ValidationFailed (``bank_user_id``; ``not_a_connector``); BackofficeUnavailableError.
    """
    require_payment_admin(actor)
    agent = _connector(agent_id)
    if not isinstance(bank_user_id, str) or not 1 <= len(bank_user_id.strip()) <= 64:
        raise ValidationFailed(
            "bank_user_id is required (64 characters at most).",
            field="bank_user_id",
            reason="missing",
        )
    bank_user_id = bank_user_id.strip()
    try:
        backoffice_call(lambda c: c.user_get(user_id=bank_user_id))
    except BackofficeError as exc:
        raise _translate(exc, field="bank_user_id") from None
    at = _now(now)
    with transaction.atomic():
        existing = AgentAccount.objects.filter(agent=agent, bank_user_id=bank_user_id).first()
        if existing is not None:
            return account_dict(existing)
        try:
            with transaction.atomic():
                account = AgentAccount.objects.create(
                    agent=agent, bank_user_id=bank_user_id, added_by=actor, added_at=at
                )
        except IntegrityError:
            account = AgentAccount.objects.get(agent=agent, bank_user_id=bank_user_id)
            return account_dict(account)
        audit_append(
            action="case.account_add",
            actor=actor,
            actor_role=role_label(actor),
            on_behalf_of=bank_user_id,
            object_type="agent",
            object_id=agent.pk,
            before=None,
            after={"agent_id": agent.pk, "bank_user_id": bank_user_id},
        )
    return account_dict(account)


@_audited("case.account_remove")
def agent_account_remove(
    *, actor: AbstractBaseUser, agent_id: Any, bank_user_id: Any, now: datetime | None = None
) -> dict[str, Any]:
    """Take an account from a connector.  Their open tasks of that account (assigned or
    in progress) are routed again at once — they may no longer work them.

    Errors: PermissionDenied; NotFound (agent, or the account is not theirs).
    """
    require_payment_admin(actor)
    agent = _connector(agent_id)
    at = _now(now)
    with transaction.atomic():
        account = (
            AgentAccount.objects.select_for_update()
            .select_related("agent", "added_by")
            .filter(agent=agent, bank_user_id=str(bank_user_id))
            .first()
        )
        if account is None:
            raise NotFound(
                "This agent does not manage that account.",
                field="bank_user_id",
                reason="not_managed",
            )
        removed = account_dict(account)
        account.delete()
        audit_append(
            action="case.account_remove",
            actor=actor,
            actor_role=role_label(actor),
            on_behalf_of=account.bank_user_id,
            object_type="agent",
            object_id=agent.pk,
            before={"agent_id": agent.pk, "bank_user_id": account.bank_user_id},
            after=None,
        )
        held = list(
            CaseTask.objects.select_for_update(of=("self",))
            .select_related("case")
            .filter(
                assignee=agent,
                case__bank_user_id=account.bank_user_id,
                state__in=[TaskState.ASSIGNED, TaskState.IN_PROGRESS],
            )
            .order_by("id")
        )
        rerouted = []
        for task in held:
            case = task.case
            before = _task_state(task)
            task.started_at = None
            _route(task, case, at=at)
            task.save()
            _audit(
                "case.task_assign",
                case,
                actor=actor,
                before=before,
                after=_task_state(task) | {"routed_by": task.routed_by, "rerouted": True},
                task=task,
            )
            case.state = _state_for(task)
            _case_save(case, at=at)
            rerouted.append((case, task))
        for case, task in rerouted:  # console events last (lock order)
            _announce_case(
                case,
                note=(
                    f"Case {case.reference}: {TaskKind(task.kind).label.lower()} re-routed to "
                    f"{_who(task)} (account no longer managed by its agent)."
                ),
            )
    return removed | {"rerouted_tasks": [t.pk for _, t in rerouted]}
