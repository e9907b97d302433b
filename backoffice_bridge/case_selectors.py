"""Payment case selectors (reads): who may see and work which case, the case as the
console and the API carry it, the agents' lists, the assignment rules and the accounts
connectors manage (docs/backoffice.md, "Payment cases").

Connector agents (``backoffice_bridge.work_managed_accounts_only``) see and work only cases
of the bank users in their ``AgentAccount`` rows — with none, nothing: the restriction
fails closed.  Every read here applies it; the services apply it again on every write.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.db.models import Q, QuerySet

from backoffice_bridge.models import (
    AgentAccount,
    Case,
    CaseKind,
    CaseState,
    CaseTask,
    TaskAssignmentRule,
    TaskKind,
    TaskState,
)
from backoffice_bridge.selectors import staff_label
from hub.exceptions import NotFound, PermissionDenied, ValidationFailed
from hub.roles import (
    PERM_APPROVE_DEBITS,
    PERM_MANAGE_CASE_RULES,
    PERM_MANAGED_ACCOUNTS_ONLY,
    PERM_OPEN_CASES,
    PERM_VIEW_ALL_CASES,
    PERM_WORK_CLAIM_TASKS,
    PERM_WORK_INQUIRY_TASKS,
    can_supervise,
)

#: The workflow of each kind of case, in order (seed 002's playbook).
WORKFLOWS: dict[str, tuple[str, ...]] = {
    CaseKind.INQUIRY: (TaskKind.INVESTIGATE, TaskKind.RESPOND),
    CaseKind.CLAIM: (TaskKind.INVESTIGATE, TaskKind.DEBIT_APPROVAL, TaskKind.SETTLE),
}
#: Every permission that makes someone a case agent (for the API's gate and rule targets).
AGENT_PERMISSIONS = (PERM_WORK_INQUIRY_TASKS, PERM_WORK_CLAIM_TASKS, PERM_APPROVE_DEBITS)
CASE_PERMISSIONS = (
    *AGENT_PERMISSIONS,
    PERM_OPEN_CASES,
    PERM_MANAGE_CASE_RULES,
    PERM_VIEW_ALL_CASES,
)
OPEN_TASK_STATES = (TaskState.QUEUED, TaskState.ASSIGNED, TaskState.IN_PROGRESS)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# --- who may do what -----------------------------------------------------------------------


def task_permission(case_kind: str, task_kind: str) -> str:
    """The permission an agent needs to receive and work a task."""
    if task_kind == TaskKind.DEBIT_APPROVAL:
        return PERM_APPROVE_DEBITS
    return PERM_WORK_INQUIRY_TASKS if case_kind == CaseKind.INQUIRY else PERM_WORK_CLAIM_TASKS


def is_connector(user: AbstractBaseUser) -> bool:
    """A connector agent: restricted to the accounts they manage.  Superusers hold every
    permission in Django, so they are never taken for one."""
    return not getattr(user, "is_superuser", False) and user.has_perm(PERM_MANAGED_ACCOUNTS_ONLY)


def managed_accounts(user: AbstractBaseUser) -> set[str]:
    return set(AgentAccount.objects.filter(agent_id=user.pk).values_list("bank_user_id", flat=True))


def works_on_kind(user: AbstractBaseUser, case_kind: str) -> bool:
    """Whether ``user`` works on some task of this kind of case."""
    if case_kind == CaseKind.INQUIRY:
        return user.has_perm(PERM_WORK_INQUIRY_TASKS)
    return user.has_perm(PERM_WORK_CLAIM_TASKS) or user.has_perm(PERM_APPROVE_DEBITS)


def may_use_cases(user: AbstractBaseUser) -> bool:
    """The case API's gate: any case permission (agents need not handle conversations)."""
    return any(user.has_perm(p) for p in CASE_PERMISSIONS)


def permission_holders(perm: str) -> QuerySet[Any]:
    """Active users holding ``perm`` through a group or directly (superusers only when
    they do: they are not in the routing pools)."""
    app_label, codename = perm.split(".")
    permission = Permission.objects.filter(
        content_type__app_label=app_label, codename=codename
    ).first()
    User = get_user_model()
    if permission is None:
        return User.objects.none()
    return (
        User.objects.filter(is_active=True)
        .filter(Q(groups__permissions=permission) | Q(user_permissions=permission))
        .distinct()
    )


def _kinds_worked(actor: AbstractBaseUser) -> list[str]:
    return [kind for kind in CaseKind.values if works_on_kind(actor, kind)]


def _visible(actor: AbstractBaseUser) -> Q | None:
    """The cases ``actor`` may read as a filter (None: every case)."""
    connector = is_connector(actor)
    if not connector and (actor.has_perm(PERM_VIEW_ALL_CASES) or can_supervise(actor)):
        return None
    seen = (
        Q(opened_by=actor.pk)
        | Q(tasks__assignee=actor.pk)
        | Q(conversation__operator=actor.pk)
        | Q(kind__in=_kinds_worked(actor))
    )
    if connector:
        # Every path, even a case they opened or once held: their accounts only.
        seen &= Q(bank_user_id__in=managed_accounts(actor))
    return seen


def _may_see(actor: AbstractBaseUser, case: Case) -> bool:
    if is_connector(actor):
        if case.bank_user_id not in managed_accounts(actor):
            return False
    elif actor.has_perm(PERM_VIEW_ALL_CASES) or can_supervise(actor):
        return True
    if case.opened_by_id == actor.pk or works_on_kind(actor, case.kind):
        return True
    if case.conversation.operator_id == actor.pk:
        return True
    return CaseTask.objects.filter(case=case, assignee=actor.pk).exists()


def _refuse_unseen(actor: AbstractBaseUser, case: Case, *, what: str, ident: int) -> Exception:
    """A connector who works on this kind of case but not on this account learns why; to
    anyone else a forbidden case is missing."""
    if is_connector(actor) and works_on_kind(actor, case.kind):
        return PermissionDenied(
            "You work only on cases of the bank accounts you manage.",
            reason="account_not_managed",
            bank_user_id=case.bank_user_id,
        )
    return NotFound(f"No such {what}.", **{f"{what}_id": ident})


def _pk(raw: Any, what: str) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise NotFound(f"No such {what}.", **{f"{what}_id": str(raw)}) from None


def _cases() -> QuerySet[Case]:
    return Case.objects.select_related("opened_by", "conversation")


def access_case(*, actor: AbstractBaseUser, case_id: Any, lock: bool = False) -> Case:
    """The case for ``actor``: NotFound when missing or not theirs to see;
    PermissionDenied ``account_not_managed`` for a connector outside their accounts."""
    pk = _pk(case_id, "case")
    qs = _cases()
    if lock:
        qs = qs.select_for_update(of=("self",))
    case = qs.filter(pk=pk).first()
    if case is None:
        raise NotFound("No such case.", case_id=pk)
    if not _may_see(actor, case):
        raise _refuse_unseen(actor, case, what="case", ident=pk)
    return case


def access_case_task(*, actor: AbstractBaseUser, task_id: Any, lock: bool = False) -> CaseTask:
    """A task and its case for ``actor`` (the case's visibility rules).  With ``lock``,
    the case row then the task row are locked, in that order (every writer's order)."""
    pk = _pk(task_id, "task")
    case_id = CaseTask.objects.filter(pk=pk).values_list("case_id", flat=True).first()
    if case_id is None:
        raise NotFound("No such task.", task_id=pk)
    case = _cases().filter(pk=case_id)
    if lock:
        case = case.select_for_update(of=("self",))
    found = case.first()
    if found is None:  # pragma: no cover - cases are never deleted
        raise NotFound("No such task.", task_id=pk)
    if not _may_see(actor, found):
        raise _refuse_unseen(actor, found, what="task", ident=pk)
    tasks = CaseTask.objects.select_related("assignee", "completed_by").filter(pk=pk)
    if lock:
        tasks = tasks.select_for_update(of=("self",))
    task = tasks.get()
    task.case = found
    return task


# --- shapes --------------------------------------------------------------------------------


def task_dict(task: CaseTask) -> dict[str, Any]:
    """A task as the ``backoffice.case`` event carries it."""
    return {
        "id": task.pk,
        "kind": task.kind,
        "label": TaskKind(task.kind).label,
        "state": task.state,
        "assignee": staff_label(task.assignee),
    }


def _tasks_of(case: Case) -> list[CaseTask]:
    return list(
        CaseTask.objects.select_related("assignee", "completed_by")
        .filter(case_id=case.pk)
        .order_by("position", "id")
    )


def case_dict(case: Case, tasks: list[CaseTask] | None = None) -> dict[str, Any]:
    """The case as the console event ``backoffice.case`` carries it (this exact shape)."""
    tasks = _tasks_of(case) if tasks is None else tasks
    return {
        "id": case.pk,
        "reference": case.reference,
        "kind": case.kind,
        "state": case.state,
        "state_label": CaseState(case.state).label,
        "subject": case.subject,
        "tasks": [task_dict(t) for t in tasks],
        "opened_at": _iso(case.opened_at),
        "updated_at": _iso(case.updated_at),
        "resolved_at": _iso(case.resolved_at),
    }


def task_detail_dict(task: CaseTask) -> dict[str, Any]:
    return task_dict(task) | {
        "position": task.position,
        "routed_by": task.routed_by,
        "rule_id": task.rule_id,
        "created_at": _iso(task.created_at),
        "assigned_at": _iso(task.assigned_at),
        "started_at": _iso(task.started_at),
        "completed_at": _iso(task.completed_at),
        "completed_by": staff_label(task.completed_by),
        "outcome": task.outcome,
        "note": task.note,
    }


def case_detail_dict(case: Case, tasks: list[CaseTask] | None = None) -> dict[str, Any]:
    """What the API returns: the event's shape plus the case's particulars."""
    tasks = _tasks_of(case) if tasks is None else tasks
    return case_dict(case, tasks) | {
        "tasks": [task_detail_dict(t) for t in tasks],
        "kind_label": CaseKind(case.kind).label,
        "resolution": case.resolution,
        "bank_user_id": case.bank_user_id,
        "conversation_id": str(case.conversation_id),
        "customer_id": str(case.customer_id),
        "request_id": case.request_id,
        "params": case.params,
        "amount": str(case.amount) if case.amount is not None else None,
        "currency": case.currency,
        "opened_by": staff_label(case.opened_by),
    }


# --- reads -----------------------------------------------------------------------------------

CASE_VIEWS = ("all", "opened", "assigned", "queue")


def case_get(*, actor: AbstractBaseUser, case_id: Any) -> dict[str, Any]:
    return case_detail_dict(access_case(actor=actor, case_id=case_id))


def _states(raw: list[str] | None, valid: list[str], name: str = "state") -> list[str] | None:
    if not raw:
        return None
    for value in raw:
        if value not in valid:
            raise ValidationFailed(
                f"Unknown {name} {value!r}.", field=name, reason="not_a_choice", choices=valid
            )
    return raw


def _queue_filter(actor: AbstractBaseUser) -> Q:
    """Queued tasks ``actor`` may take (permission by task; accounts for connectors)."""
    wanted = Q(pk__in=[])
    for kind in CaseKind.values:
        for task_kind in WORKFLOWS[kind]:
            if actor.has_perm(task_permission(kind, task_kind)):
                wanted |= Q(case__kind=kind, kind=task_kind)
    wanted &= Q(state=TaskState.QUEUED)
    if is_connector(actor):
        wanted &= Q(case__bank_user_id__in=managed_accounts(actor))
    return wanted


def cases_list(
    *,
    actor: AbstractBaseUser,
    view: str = "all",
    states: list[str] | None = None,
    conversation_id: Any = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Cases ``actor`` may see, newest first: ``all``, the ones they ``opened``, those
    with a task ``assigned`` to them (not done), or with a task in the ``queue`` they may
    take; ``states`` filters by case state, ``conversation_id`` by conversation."""
    if view not in CASE_VIEWS:
        raise ValidationFailed(
            f"Unknown view {view!r}.", field="view", reason="not_a_choice", choices=list(CASE_VIEWS)
        )
    wanted = _states(states, list(CaseState.values))
    if not 1 <= limit <= 500:
        raise ValidationFailed("limit is 1 to 500.", field="limit", reason="out_of_range")
    qs = _cases()
    visible = _visible(actor)
    if visible is not None:
        qs = qs.filter(visible)
    if view == "opened":
        qs = qs.filter(opened_by=actor.pk)
    elif view == "assigned":
        qs = qs.filter(
            tasks__assignee=actor.pk,
            tasks__state__in=[TaskState.ASSIGNED, TaskState.IN_PROGRESS],
        )
    elif view == "queue":
        qs = qs.filter(pk__in=CaseTask.objects.filter(_queue_filter(actor)).values("case_id"))
    if wanted:
        qs = qs.filter(state__in=wanted)
    if conversation_id:
        qs = qs.filter(conversation_id=str(conversation_id))
    rows = list(qs.distinct().order_by("-opened_at", "-id")[:limit])
    return [case_detail_dict(c) for c in rows]


def case_tasks_mine(
    *, actor: AbstractBaseUser, states: list[str] | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """The tasks assigned to ``actor`` (assigned and in progress by default), oldest
    first, each with its case; a connector's are filtered to their accounts again."""
    wanted = _states(states, list(TaskState.values)) or [
        TaskState.ASSIGNED,
        TaskState.IN_PROGRESS,
    ]
    qs = CaseTask.objects.select_related("assignee", "completed_by", "case").filter(
        assignee=actor.pk, state__in=wanted
    )
    if is_connector(actor):
        qs = qs.filter(case__bank_user_id__in=managed_accounts(actor))
    rows = list(qs.order_by("created_at", "id")[: max(1, min(limit, 500))])
    return [_task_with_case(t) for t in rows]


def case_tasks_queue(*, actor: AbstractBaseUser, limit: int = 200) -> list[dict[str, Any]]:
    """Queued tasks (no eligible agent when routed) that ``actor`` may take, oldest first."""
    qs = CaseTask.objects.select_related("assignee", "completed_by", "case").filter(
        _queue_filter(actor)
    )
    rows = list(qs.order_by("created_at", "id")[: max(1, min(limit, 500))])
    return [_task_with_case(t) for t in rows]


def _task_with_case(task: CaseTask) -> dict[str, Any]:
    case = task.case
    return task_detail_dict(task) | {
        "case": {
            "id": case.pk,
            "reference": case.reference,
            "kind": case.kind,
            "state": case.state,
            "subject": case.subject,
            "bank_user_id": case.bank_user_id,
            "amount": str(case.amount) if case.amount is not None else None,
            "currency": case.currency,
        }
    }


# --- rules and managed accounts (payment admins) ---------------------------------------------


def require_payment_admin(actor: AbstractBaseUser) -> None:
    if not actor.has_perm(PERM_MANAGE_CASE_RULES):
        raise PermissionDenied("Only payment admins configure case routing.")


def rule_dict(rule: TaskAssignmentRule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "name": rule.name,
        "position": rule.position,
        "case_kind": rule.case_kind or None,
        "task_kind": rule.task_kind or None,
        "min_amount": str(rule.min_amount) if rule.min_amount is not None else None,
        "max_amount": str(rule.max_amount) if rule.max_amount is not None else None,
        "currency": rule.currency or None,
        "bank_user_id": rule.bank_user_id or None,
        "target_role": rule.target_role or None,
        "target_agent": staff_label(rule.target_agent),
        "created_by": staff_label(rule.created_by),
        "created_at": _iso(rule.created_at),
        "updated_by": staff_label(rule.updated_by),
        "updated_at": _iso(rule.updated_at),
    }


def rules_ordered() -> QuerySet[TaskAssignmentRule]:
    return TaskAssignmentRule.objects.select_related(
        "target_agent", "created_by", "updated_by"
    ).order_by("position", "id")


def case_rules_list(*, actor: AbstractBaseUser) -> list[dict[str, Any]]:
    """The assignment rules in the order they are tried (payment admins)."""
    require_payment_admin(actor)
    return [rule_dict(r) for r in rules_ordered()]


def account_dict(account: AgentAccount) -> dict[str, Any]:
    return {
        "agent": staff_label(account.agent),
        "bank_user_id": account.bank_user_id,
        "added_by": staff_label(account.added_by),
        "added_at": _iso(account.added_at),
    }


def agent_accounts_list(*, actor: AbstractBaseUser, agent_id: Any) -> dict[str, Any]:
    """The accounts a connector manages: payment admins for anyone, an agent for
    themselves."""
    pk = _pk(agent_id, "agent")
    if pk != actor.pk:
        require_payment_admin(actor)
    agent = get_user_model().objects.filter(pk=pk).first()
    if agent is None:
        raise NotFound("No such agent.", agent_id=pk)
    rows = (
        AgentAccount.objects.select_related("agent", "added_by")
        .filter(agent_id=pk)
        .order_by("bank_user_id")
    )
    return {
        "agent": staff_label(agent),
        "connector": is_connector(agent),
        "accounts": [account_dict(a) for a in rows],
    }
