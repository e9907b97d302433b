"""External advisors (seed 003): services, selectors and the HTTP gate.

An admin shows an access code, valid ``HUB_ADVISOR_CODE_MINUTES`` (60) minutes; after that a
new one is generated the next time anyone asks for it.  An advisor account (role "External
advisor": a user who holds ``hub.advisor_read``; not staff, so no console) that enters the
code gets *temporary* access for ``HUB_ADVISOR_TEMPORARY_HOURS``; an admin may instead
assign a *permanent* advisor.  Either way the rights are the same, fixed and read-only: the
role's permissions (conversations through the advisor endpoints here, cases, reports), never
an action.  Access ends when an admin removes the advisor, the advisor leaves, or a
temporary access runs out; the advisor's API tokens are then revoked and
``AdvisorGateMiddleware`` logs out every session that was opened under that access.

Every change, every refusal and every read of customer data by an advisor is appended to
the hash-chained audit log (``backoffice_bridge.audit``) with the actor role "External
advisor".  Services take ``now`` (tests pass the clock, as elsewhere in the hub).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model, logout
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve
from django.utils import timezone

from backoffice_bridge.audit import actor_role_label, audit_append
from hub.auth import api_token_revoke_all
from hub.errors import error_response
from hub.exceptions import (
    Conflict,
    ErrorCode,
    HubError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from hub.models import AdvisorAccessCode, AdvisorEndReason, AdvisorGrant, AdvisorGrantKind
from hub.roles import (
    PERM_ADVISOR_READ,
    PERM_MANAGE_ADVISORS,
    PERM_VIEW_ALL_CASES,
    PERM_VIEW_DASHBOARD,
    Role,
    role_groups_ensure,
)

P = ParamSpec("P")
R = TypeVar("R")

ADVISOR_LABEL = Role.ADVISOR.value
# Read out over the phone: no I, L, O, 0 or 1.  8 of 31 symbols: 8.5 * 10^11 codes, and an
# advisor gets HUB_ADVISOR_JOIN_MAX_ATTEMPTS wrong tries an hour.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
# The session remembers the access it was opened under: when that access ends, so does it.
SESSION_KEY = "hub_advisor_grant"
READ_LIMIT = 200


class JoinRateLimited(HubError):
    code = ErrorCode.RATE_LIMITED
    status = 429
    default_message = "Too many wrong access codes: wait before trying again."


# --- who is an advisor ------------------------------------------------------------------


def is_advisor(user: Any) -> bool:
    """An active advisor account (holds ``hub.advisor_read``; a superuser never counts)."""
    return bool(
        getattr(user, "is_authenticated", False)
        and user.is_active
        and not user.is_superuser
        and user.has_perm(PERM_ADVISOR_READ)
    )


def _advisor_permission() -> Permission:
    app_label, codename = PERM_ADVISOR_READ.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def _advisor_accounts() -> Any:
    """Users holding the advisor permission through a group or directly (active or not)."""
    permission = _advisor_permission()
    return (
        get_user_model()
        .objects.filter(Q(groups__permissions=permission) | Q(user_permissions=permission))
        .filter(is_superuser=False)
        .distinct()
    )


def _role_label(user: AbstractBaseUser | None) -> str:
    if user is not None and is_advisor(user):
        return ADVISOR_LABEL
    return actor_role_label(user)


def _require_manager(actor: AbstractBaseUser) -> None:
    if not actor.has_perm(PERM_MANAGE_ADVISORS):
        raise PermissionDenied(
            "Only administrators manage external advisors.", reason="not_an_admin"
        )


def _require_advisor(actor: AbstractBaseUser) -> None:
    if not is_advisor(actor):
        raise PermissionDenied(
            "Only external advisor accounts can do this.", reason="not_an_advisor"
        )


# --- wire shapes ------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _person(user: AbstractBaseUser | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.get_full_name() or user.get_username()}


def code_display(code: str) -> str:
    """``ABCD2345`` → ``ABCD-2345`` (how the page shows it and it is read out)."""
    return f"{code[:4]}-{code[4:]}"


def code_dict(row: AdvisorAccessCode, *, now: datetime) -> dict[str, Any]:
    return {
        "code": code_display(row.code),
        "created_at": _iso(row.created_at),
        "expires_at": _iso(row.expires_at),
        "seconds_left": max(0, int((row.expires_at - now).total_seconds())),
        "valid_minutes": settings.HUB_ADVISOR_CODE_MINUTES,
    }


def grant_dict(grant: AdvisorGrant, *, now: datetime) -> dict[str, Any]:
    live = grant.ended_at is None and (grant.ends_at is None or grant.ends_at > now)
    seconds_left = None
    if live and grant.ends_at is not None:
        seconds_left = max(0, int((grant.ends_at - now).total_seconds()))
    return {
        "id": grant.pk,
        "advisor_id": grant.advisor_id,
        "kind": grant.kind,
        "live": live,
        "started_at": _iso(grant.started_at),
        "ends_at": _iso(grant.ends_at),
        "seconds_left": seconds_left,
        "granted_by": _person(grant.granted_by) if grant.granted_by_id else None,
        "ended_at": _iso(grant.ended_at),
        "ended_by": _person(grant.ended_by) if grant.ended_by_id else None,
        "end_reason": grant.end_reason or None,
    }


def advisor_dict(
    user: AbstractBaseUser, grant: AdvisorGrant | None, *, now: datetime
) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "name": user.get_full_name() or user.get_username(),
        "email": getattr(user, "email", ""),
        "is_active": user.is_active,
        "access": grant_dict(grant, now=now) if grant is not None else None,
    }


# --- auditing refusals ------------------------------------------------------------------

_ATTEMPT_ARGS = ("advisor_id", "username", "conversation_id", "before_id", "limit")


def _mask(raw: Any) -> str:
    """A tried code as the log keeps it: never whole (it might be the live one)."""
    text = str(raw)[:32]
    return (text[:2] + "…") if len(text) > 2 else "…"


def _refusal_record(action: str, error: HubError, kwargs: dict[str, Any]) -> None:
    actor = kwargs.get("actor")
    actor = actor if isinstance(actor, AbstractBaseUser) else None
    attempt = {name: kwargs[name] for name in _ATTEMPT_ARGS if kwargs.get(name) is not None}
    if kwargs.get("code") is not None:
        attempt["code"] = _mask(kwargs["code"])
    attempt = {k: v if isinstance(v, int | bool) else str(v)[:200] for k, v in attempt.items()}
    with transaction.atomic():
        audit_append(
            action=action,
            actor=actor,
            actor_role=_role_label(actor),
            conversation_id=str(kwargs.get("conversation_id") or "")[:64],
            object_type="advisor" if kwargs.get("advisor_id") is not None else "",
            object_id=str(kwargs.get("advisor_id") or "")[:64],
            after={"error": error.as_dict(), "attempt": attempt},
            outcome="refused",
        )


def _audited(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A refused call (any HubError) is audited as ``outcome=refused``, then re-raised; the
    successful path audits itself inside its transaction."""

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @wraps(func)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except HubError as exc:
                _refusal_record(action, exc, dict(kwargs))
                raise

        return inner

    return wrap


# --- grants -----------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    return now if now is not None else timezone.now()


def _live_grant(advisor_id: int, *, lock: bool = False) -> AdvisorGrant | None:
    qs = AdvisorGrant.objects.select_related("granted_by").filter(
        advisor_id=advisor_id, ended_at__isnull=True
    )
    if lock:
        qs = qs.select_for_update(of=("self",))
    return qs.first()


def _lapsed(grant: AdvisorGrant, now: datetime) -> bool:
    return grant.kind == AdvisorGrantKind.TEMPORARY and grant.ends_at <= now


def _grant_end(
    grant: AdvisorGrant,
    *,
    reason: AdvisorEndReason,
    by: AbstractBaseUser | None,
    now: datetime,
    action: str,
) -> None:
    """End a locked live grant, revoke the advisor's API tokens, audit; in the caller's
    transaction.  Sessions end at their next request (the gate)."""
    from hub.sockets import user_sockets_close

    before = grant_dict(grant, now=now)
    grant.ended_at = min(now, grant.ends_at) if reason == AdvisorEndReason.EXPIRED else now
    grant.ended_by = by
    grant.end_reason = reason
    grant.save(update_fields=["ended_at", "ended_by", "end_reason"])
    api_token_revoke_all(user_id=grant.advisor_id)
    audit_append(
        action=action,
        actor=by,
        actor_role=_role_label(by) if by is not None else None,
        object_type="advisor",
        object_id=grant.advisor_id,
        before=before,
        after=grant_dict(grant, now=now),
    )
    # Advisors get no console socket; should one ever be open, it closes too.
    user_sockets_close(user_id=grant.advisor_id, reason="advisor_access_ended")


def _live_grant_locked(advisor_id: int, now: datetime) -> AdvisorGrant | None:
    """The advisor's live grant, row-locked; a temporary one past its end is ended
    (``expired``) on the way.  Inside a transaction."""
    grant = _live_grant(advisor_id, lock=True)
    if grant is not None and _lapsed(grant, now):
        _grant_end(
            grant, reason=AdvisorEndReason.EXPIRED, by=None, now=now, action="advisor.expired"
        )
        return None
    return grant


def advisor_access_check(*, advisor: AbstractBaseUser, now: datetime | None = None) -> Any:
    """The advisor's live grant or None: what the gate asks on every request.  One query
    while the access lasts; a temporary access found past its end is ended here
    (``advisor.expired``, tokens revoked), so expiry needs no job."""
    now = _now(now)
    grant = _live_grant(advisor.pk)
    if grant is None or not _lapsed(grant, now):
        return grant
    with transaction.atomic():
        return _live_grant_locked(advisor.pk, now)


def advisor_grants_expire(*, now: datetime | None = None) -> int:
    """End every temporary access past its end (the admins' list shows the truth)."""
    now = _now(now)
    lapsed = list(
        AdvisorGrant.objects.filter(
            ended_at__isnull=True, kind=AdvisorGrantKind.TEMPORARY, ends_at__lte=now
        ).values_list("advisor_id", flat=True)
    )
    ended = 0
    for advisor_id in lapsed:
        with transaction.atomic():
            grant = _live_grant(advisor_id, lock=True)
            if grant is not None and _lapsed(grant, now):
                _grant_end(
                    grant,
                    reason=AdvisorEndReason.EXPIRED,
                    by=None,
                    now=now,
                    action="advisor.expired",
                )
                ended += 1
    return ended


def _advisor_get(advisor_id: Any, *, lock: bool = False) -> AbstractBaseUser:
    """The advisor account ``advisor_id`` (row-locked: serialises changes of one advisor's
    access), or NotFound / ``not_an_advisor``."""
    if not isinstance(advisor_id, int) or isinstance(advisor_id, bool):
        raise ValidationFailed(
            "Field 'advisor_id' must be an integer.",
            code=ErrorCode.WRONG_TYPE,
            field="advisor_id",
        )
    qs = get_user_model().objects.filter(pk=advisor_id)
    if lock:
        qs = qs.select_for_update()
    user = qs.first()
    if user is None:
        raise NotFound("No such user.", field="advisor_id", advisor_id=advisor_id)
    if not _advisor_accounts().filter(pk=user.pk).exists():
        raise ValidationFailed(
            f"User {user.get_username()} is not an external advisor account.",
            field="advisor_id",
            reason="not_an_advisor",
            advisor_id=advisor_id,
        )
    return user


# --- the access code --------------------------------------------------------------------


def _live_code(now: datetime) -> AdvisorAccessCode | None:
    return (
        AdvisorAccessCode.objects.filter(created_at__lte=now, expires_at__gt=now)
        .filter(Q(replaced_at__isnull=True) | Q(replaced_at__gt=now))
        .order_by("-created_at", "-pk")
        .first()
    )


def _code_new(*, now: datetime, created_by: AbstractBaseUser | None) -> AdvisorAccessCode:
    for _ in range(5):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        try:
            with transaction.atomic():
                return AdvisorAccessCode.objects.create(
                    code=code,
                    created_at=now,
                    expires_at=now + timedelta(minutes=settings.HUB_ADVISOR_CODE_MINUTES),
                    created_by=created_by,
                )
        except IntegrityError:  # the same code drawn twice: draw again
            continue
    raise RuntimeError("could not draw an unused advisor access code")


def _codes_lock() -> None:
    """Serialise code generation: lock the newest code row (none yet: nothing to lock)."""
    AdvisorAccessCode.objects.select_for_update().order_by("-pk").values("pk").first()


@_audited("advisor.code_viewed")
def advisor_code_current(*, actor: AbstractBaseUser, now: datetime | None = None) -> dict:
    """The live access code, generated when there is none (the last one is past its
    minutes or was replaced): ``advisor.code_generated`` (by the system).  Admins only."""
    _require_manager(actor)
    now = _now(now)
    row = _live_code(now)
    if row is None:
        with transaction.atomic():
            _codes_lock()
            row = _live_code(now)
            if row is None:
                row = _code_new(now=now, created_by=None)
                audit_append(
                    action="advisor.code_generated",
                    actor=None,
                    object_type="advisor_code",
                    object_id=row.pk,
                    after={"created_at": row.created_at, "expires_at": row.expires_at},
                )
    return code_dict(row, now=now)


@_audited("advisor.code_rotated")
def advisor_code_rotate(*, actor: AbstractBaseUser, now: datetime | None = None) -> dict:
    """Replace the live code at once (it was told to the wrong person, say): the old one
    stops working, advisors who already joined keep their access.  Admins only."""
    _require_manager(actor)
    now = _now(now)
    with transaction.atomic():
        _codes_lock()
        old = _live_code(now)
        AdvisorAccessCode.objects.filter(created_at__lte=now, expires_at__gt=now).filter(
            replaced_at__isnull=True
        ).update(replaced_at=now)
        row = _code_new(now=now, created_by=actor)
        audit_append(
            action="advisor.code_rotated",
            actor=actor,
            actor_role=_role_label(actor),
            object_type="advisor_code",
            object_id=row.pk,
            before={"code_id": old.pk, "expires_at": old.expires_at} if old else None,
            after={"code_id": row.pk, "created_at": row.created_at, "expires_at": row.expires_at},
        )
    return code_dict(row, now=now)


def code_normalize(raw: Any) -> str:
    """What an advisor typed → the stored form (case, spaces and dashes ignored)."""
    if raw is None:
        raise ValidationFailed(
            "Field 'code' is required.", code=ErrorCode.MISSING_FIELD, field="code"
        )
    if not isinstance(raw, str):
        raise ValidationFailed(
            "Field 'code' must be a string.", code=ErrorCode.WRONG_TYPE, field="code"
        )
    cleaned = re.sub(r"[\s-]", "", raw).upper()
    if len(cleaned) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in cleaned):
        raise ValidationFailed(
            "An access code is 8 letters and digits, like ABCD-2345.",
            field="code",
            reason="bad_format",
        )
    return cleaned


def _join_attempts_check(actor: AbstractBaseUser) -> None:
    """At most HUB_ADVISOR_JOIN_MAX_ATTEMPTS wrong codes an hour per advisor, counted from
    the audit log (the refusals are there anyway)."""
    from backoffice_bridge.models import AuditEntry

    wrong = AuditEntry.objects.filter(
        actor_id=actor.pk,
        action="advisor.joined",
        outcome="refused",
        at__gte=timezone.now() - timedelta(hours=1),
        after__error__code=str(ErrorCode.INVALID_VALUE),
    ).count()
    if wrong >= settings.HUB_ADVISOR_JOIN_MAX_ATTEMPTS:
        raise JoinRateLimited(
            f"{wrong} wrong access codes in the last hour: try again later.",
            reason="too_many_attempts",
            max_attempts=settings.HUB_ADVISOR_JOIN_MAX_ATTEMPTS,
        )


# --- joining, assigning, removing, leaving -----------------------------------------------


@_audited("advisor.joined")
def advisor_join(*, actor: AbstractBaseUser, code: Any, now: datetime | None = None) -> dict:
    """An advisor enters the access code and gets temporary access for
    HUB_ADVISOR_TEMPORARY_HOURS.  Refused: not an advisor account (403), a code of the
    wrong shape, unknown, replaced or expired (400 ``invalid_value``, ``data.reason``
    ``bad_format`` / ``unknown_code`` / ``replaced`` / ``expired``), too many wrong codes
    (429), access already held (409 ``already_joined``).  Audited ``advisor.joined``."""
    _require_advisor(actor)
    now = _now(now)
    _join_attempts_check(actor)
    normalized = code_normalize(code)
    with transaction.atomic():
        row = AdvisorAccessCode.objects.filter(code=normalized).first()
        if row is None or row.created_at > now:
            raise ValidationFailed(
                "This access code is not valid: check it with the bank.",
                field="code",
                reason="unknown_code",
            )
        if row.replaced_at is not None and row.replaced_at <= now:
            raise ValidationFailed(
                "This access code was replaced by a newer one: ask the bank for the current code.",
                field="code",
                reason="replaced",
            )
        if row.expires_at <= now:
            raise ValidationFailed(
                f"This access code expired at {row.expires_at:%H:%M} UTC: "
                "ask the bank for the current code.",
                field="code",
                reason="expired",
                expired_at=_iso(row.expires_at),
            )
        get_user_model().objects.select_for_update().filter(pk=actor.pk).values("pk").first()
        live = _live_grant_locked(actor.pk, now)
        if live is not None:
            raise Conflict(
                "You already have access.",
                reason="already_joined",
                access=grant_dict(live, now=now),
            )
        grant = AdvisorGrant.objects.create(
            advisor=actor,
            kind=AdvisorGrantKind.TEMPORARY,
            started_at=now,
            ends_at=now + timedelta(hours=settings.HUB_ADVISOR_TEMPORARY_HOURS),
            code=row,
        )
        result = grant_dict(grant, now=now)
        audit_append(
            action="advisor.joined",
            actor=actor,
            actor_role=ADVISOR_LABEL,
            object_type="advisor",
            object_id=actor.pk,
            after={**result, "code_id": row.pk},
        )
    return result


@_audited("advisor.assigned")
def advisor_assign_permanent(
    *, actor: AbstractBaseUser, advisor_id: Any, now: datetime | None = None
) -> dict:
    """Make an advisor account the bank's permanent advisor (a temporary access they hold
    becomes permanent, so their session goes on).  Admins only; 400 ``not_an_advisor``,
    404, 409 ``already_permanent``.  Audited ``advisor.assigned``."""
    _require_manager(actor)
    now = _now(now)
    with transaction.atomic():
        advisor = _advisor_get(advisor_id, lock=True)
        live = _live_grant_locked(advisor.pk, now)
        if live is not None and live.kind == AdvisorGrantKind.PERMANENT:
            raise Conflict(
                f"{advisor.get_username()} is already a permanent advisor.",
                reason="already_permanent",
                advisor_id=advisor.pk,
            )
        before = grant_dict(live, now=now) if live is not None else None
        if live is not None:
            live.kind = AdvisorGrantKind.PERMANENT
            live.ends_at = None
            live.granted_by = actor
            live.save(update_fields=["kind", "ends_at", "granted_by"])
            grant = live
        else:
            grant = AdvisorGrant.objects.create(
                advisor=advisor,
                kind=AdvisorGrantKind.PERMANENT,
                started_at=now,
                granted_by=actor,
            )
        audit_append(
            action="advisor.assigned",
            actor=actor,
            actor_role=_role_label(actor),
            object_type="advisor",
            object_id=advisor.pk,
            before=before,
            after=grant_dict(grant, now=now),
        )
        return advisor_dict(advisor, grant, now=now)


@_audited("advisor.removed")
def advisor_remove(
    *, actor: AbstractBaseUser, advisor_id: Any, now: datetime | None = None
) -> dict:
    """End an advisor's access (temporary or permanent) at once.  Admins only; 400
    ``not_an_advisor``, 404, 409 ``no_access``.  Audited ``advisor.removed``."""
    _require_manager(actor)
    now = _now(now)
    with transaction.atomic():
        advisor = _advisor_get(advisor_id, lock=True)
        live = _live_grant_locked(advisor.pk, now)
        if live is None:
            raise Conflict(
                f"{advisor.get_username()} has no access to remove.",
                reason="no_access",
                advisor_id=advisor.pk,
            )
        _grant_end(
            live, reason=AdvisorEndReason.REMOVED, by=actor, now=now, action="advisor.removed"
        )
        return {**advisor_dict(advisor, None, now=now), "ended": grant_dict(live, now=now)}


@_audited("advisor.left")
def advisor_leave(*, actor: AbstractBaseUser, now: datetime | None = None) -> dict:
    """The advisor ends their own access.  409 ``no_access``.  Audited ``advisor.left``."""
    _require_advisor(actor)
    now = _now(now)
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=actor.pk).values("pk").first()
        live = _live_grant_locked(actor.pk, now)
        if live is None:
            raise Conflict("You have no access to leave.", reason="no_access")
        _grant_end(live, reason=AdvisorEndReason.LEFT, by=actor, now=now, action="advisor.left")
        return grant_dict(live, now=now)


def _advisor_group() -> Group:
    group = (
        Group.objects.filter(name=Role.ADVISOR.value, permissions__codename="advisor_read")
        .distinct()
        .first()
    )
    return group if group is not None else role_groups_ensure()[Role.ADVISOR]


@_audited("advisor.account_created")
def advisor_account_create(
    *,
    actor: AbstractBaseUser,
    username: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
) -> dict:
    """An admin creates an advisor account (role "External advisor", not staff); it has
    no access until it joins with a code or is assigned.  400 ``bad_format`` (user name,
    e-mail) or ``weak`` (password, with the validators' messages), 409 ``taken``."""
    _require_manager(actor)
    username = username.strip()
    if not username:
        raise ValidationFailed(
            "Field 'username' is required.", code=ErrorCode.MISSING_FIELD, field="username"
        )
    try:
        UnicodeUsernameValidator()(username)
    except DjangoValidationError:
        raise ValidationFailed(
            "A user name has letters, digits and @ . + - _ only.",
            field="username",
            reason="bad_format",
        ) from None
    email = email.strip()
    if email:
        try:
            validate_email(email)
        except DjangoValidationError:
            raise ValidationFailed(
                "Enter a valid e-mail address.", field="email", reason="bad_format"
            ) from None
    User = get_user_model()
    user = User(
        username=username,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        email=email,
        is_staff=False,
        is_active=True,
    )
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), field="password", reason="weak") from None
    group = _advisor_group()
    with transaction.atomic():
        if User.objects.filter(username=username).exists():
            raise Conflict(f"The user name {username} is taken.", field="username", reason="taken")
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # created concurrently under the same name
            raise Conflict(
                f"The user name {username} is taken.", field="username", reason="taken"
            ) from None
        user.groups.set([group])
        audit_append(
            action="advisor.account_created",
            actor=actor,
            actor_role=_role_label(actor),
            object_type="advisor",
            object_id=user.pk,
            after={"username": username, "name": user.get_full_name(), "email": email},
        )
    return advisor_dict(user, None, now=timezone.now())


# --- selectors --------------------------------------------------------------------------


@_audited("advisor.list_viewed")
def advisors_overview(*, actor: AbstractBaseUser, now: datetime | None = None) -> dict:
    """The admins' page: the live code, every advisor account with its access, and the
    latest ended accesses.  Ends lapsed temporary accesses first."""
    _require_manager(actor)
    now = _now(now)
    advisor_grants_expire(now=now)
    code = advisor_code_current(actor=actor, now=now)
    accounts = list(_advisor_accounts().order_by("username"))
    live = {
        g.advisor_id: g
        for g in AdvisorGrant.objects.filter(
            ended_at__isnull=True, advisor_id__in=[u.pk for u in accounts]
        ).select_related("granted_by")
    }
    ended = (
        AdvisorGrant.objects.filter(ended_at__isnull=False)
        .select_related("advisor", "granted_by", "ended_by")
        .order_by("-ended_at", "-pk")[:20]
    )
    return {
        "code": code,
        "advisors": [advisor_dict(u, live.get(u.pk), now=now) for u in accounts],
        "history": [{**grant_dict(g, now=now), "advisor": _person(g.advisor)} for g in ended],
        "temporary_hours": settings.HUB_ADVISOR_TEMPORARY_HOURS,
    }


def _area_links(actor: AbstractBaseUser) -> list[dict[str, str]]:
    """The read-only areas an advisor's page links, by permission (an area whose page is
    not installed is left out)."""
    areas = [{"name": "conversations", "label": "Conversations", "url": "/advisor/#conversations"}]
    # (permission, name, label, link, the path that must be installed for it)
    candidates = [
        (PERM_VIEW_ALL_CASES, "cases", "Cases", "/advisor/#cases", "/api/cases/"),
        (PERM_VIEW_DASHBOARD, "reports", "Reports", "/dashboard/", "/dashboard/"),
    ]
    for perm, name, label, url, installed in candidates:
        if not actor.has_perm(perm):
            continue
        try:
            resolve(installed)
        except Resolver404:
            continue
        areas.append({"name": name, "label": label, "url": url})
    return areas


def advisor_me(*, actor: AbstractBaseUser, now: datetime | None = None) -> dict:
    """The advisor's own page: who they are, their access (or none) and their areas."""
    _require_advisor(actor)
    now = _now(now)
    grant = advisor_access_check(advisor=actor, now=now)
    return {
        "advisor": advisor_dict(actor, grant, now=now),
        "access": grant_dict(grant, now=now) if grant is not None else None,
        "areas": _area_links(actor) if grant is not None else [],
        "temporary_hours": settings.HUB_ADVISOR_TEMPORARY_HOURS,
    }


def _reader_grant(actor: AbstractBaseUser, now: datetime) -> AdvisorGrant:
    _require_advisor(actor)
    grant = advisor_access_check(advisor=actor, now=now)
    if grant is None:
        raise PermissionDenied(
            "You have no advisor access now: join with a current access code.",
            reason="no_access",
        )
    return grant


def _conversation_qs() -> Any:
    from chat.models import Conversation

    return Conversation.objects.select_related("customer", "operator", "query_type", "resolution")


@_audited("advisor.read")
def advisor_conversations_list(*, actor: AbstractBaseUser, now: datetime | None = None) -> dict:
    """Every conversation, newest activity first (at most 200; ``truncated``), read-only.
    One ``advisor.read`` entry names the conversations shown."""
    from chat.selectors import conversation_dict

    now = _now(now)
    with transaction.atomic():
        grant = _reader_grant(actor, now)
        rows = list(
            _conversation_qs().order_by(F("last_message_at").desc(nulls_last=True), "-created_at")[
                : READ_LIMIT + 1
            ]
        )
        truncated = len(rows) > READ_LIMIT
        rows = rows[:READ_LIMIT]
        audit_append(
            action="advisor.read",
            actor=actor,
            actor_role=ADVISOR_LABEL,
            object_type="conversation_list",
            after={
                "area": "conversations",
                "conversation_ids": [str(c.pk) for c in rows],
                "grant_id": grant.pk,
            },
        )
    return {"conversations": [conversation_dict(c) for c in rows], "truncated": truncated}


@_audited("advisor.read")
def advisor_conversation_read(
    *,
    actor: AbstractBaseUser,
    conversation_id: Any,
    before_id: int | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> dict:
    """One conversation and a page of its messages (newest page first, ``before_id`` for
    older ones), read-only.  One ``advisor.read`` entry per read: the conversation, the
    customer, the message ids shown."""
    from chat.models import Message
    from chat.selectors import conversation_dict, message_dict

    now = _now(now)
    if limit < 1 or limit > READ_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {READ_LIMIT}.", field="limit")
    with transaction.atomic():
        grant = _reader_grant(actor, now)
        try:
            pk = uuid.UUID(str(conversation_id))
        except ValueError:
            raise NotFound("No such conversation.", conversation_id=str(conversation_id)) from None
        conversation = _conversation_qs().filter(pk=pk).first()
        if conversation is None:
            raise NotFound("No such conversation.", conversation_id=str(conversation_id))
        qs = Message.objects.filter(conversation=conversation).select_related("author")
        if before_id is not None:
            qs = qs.filter(id__lt=before_id)
        messages = list(qs.order_by("-id")[: limit + 1])
        has_more = len(messages) > limit
        messages = messages[:limit]
        messages.reverse()
        audit_append(
            action="advisor.read",
            actor=actor,
            actor_role=ADVISOR_LABEL,
            conversation_id=conversation.pk,
            object_type="customer",
            object_id=conversation.customer_id,
            after={
                "area": "conversation.messages",
                "message_ids": [m.id for m in messages],
                "before_id": before_id,
                "grant_id": grant.pk,
            },
        )
    return {
        "conversation": conversation_dict(conversation),
        "messages": [message_dict(m) for m in messages],
        "has_more": has_more,
    }


def advisor_request_record(
    *,
    actor: AbstractBaseUser,
    method: str,
    path: str,
    status: int,
    grant_id: int | None,
    conversation_id: Any = None,
    ids: dict[str, Any] | None = None,
    refused: str = "",
) -> None:
    """The gate's entry for a request of an advisor served by another app's view (a
    case, a report: ``advisor.read``, with the URL's ids) or refused by the gate
    (``advisor.request_refused`` with ``after.reason``)."""
    with transaction.atomic():
        audit_append(
            action="advisor.request_refused" if refused else "advisor.read",
            actor=actor,
            actor_role=ADVISOR_LABEL,
            conversation_id=str(conversation_id or "")[:64],
            object_type="request",
            after={
                "area": _area_of(path),
                "method": method,
                "path": path[:300],
                "status": status,
                "grant_id": grant_id,
                **({"ids": {k: str(v)[:64] for k, v in ids.items()}} if ids else {}),
                **({"reason": refused} if refused else {}),
            },
            outcome="refused" if refused else "ok",
        )


def _area_of(path: str) -> str:
    for prefix, area in (
        ("/api/dashboard/", "reports"),
        ("/dashboard/", "reports"),
        ("/api/cases/", "cases"),
        ("/api/conversations/", "conversations"),
    ):
        if path.startswith(prefix):
            return area
    return "other"


# --- the gate (HTTP transport) ----------------------------------------------------------

# What an advisor reaches with or without access: their page, joining, leaving, signing in
# and out, asking for an API token.  The advisor endpoints audit their own reads.
LOBBY_PATHS = frozenset(
    {
        "/advisor/",
        "/api/advisors/me/",
        "/api/advisors/join/",
        "/api/advisors/leave/",
        "/accounts/login/",
        "/accounts/logout/",
        "/api/auth/token/",
    }
)
SELF_AUDITED_PREFIX = "/api/advisors/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HOME_PATHS = frozenset({"/", "/console/"})


@dataclass
class _Verdict:
    response: HttpResponse | None = None
    grant_id: int | None = None


def _wants_json(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _gate(request: HttpRequest, user: AbstractBaseUser) -> _Verdict:
    path = request.path_info
    if path.startswith(settings.STATIC_URL):
        return _Verdict()
    grant = advisor_access_check(advisor=user)
    by_token = getattr(request, "hub_auth", None) == "token"
    session = None if by_token else getattr(request, "session", None)
    bound = session.get(SESSION_KEY) if session is not None else None
    if bound is not None and (grant is None or grant.pk != bound):
        # The access this session was opened under has ended: so does the session.
        logout(request)
        if _wants_json(request):
            return _Verdict(
                error_response(
                    NotAuthenticated(
                        "Your advisor access has ended: sign in again to join with a new code.",
                        reason="advisor_access_ended",
                    )
                )
            )
        return _Verdict(redirect(f"{settings.LOGIN_URL}?next=/advisor/"))
    if session is not None and grant is not None and bound != grant.pk:
        session[SESSION_KEY] = grant.pk
    grant_id = grant.pk if grant is not None else None
    if path in LOBBY_PATHS:
        return _Verdict(grant_id=grant_id)
    if path in HOME_PATHS and request.method in SAFE_METHODS:
        return _Verdict(redirect("/advisor/"))  # advisors have no console
    if grant is None:
        refused: HubError = PermissionDenied(
            "You have no advisor access now: join with a current access code.",
            reason="advisor_no_access",
        )
    elif request.method not in SAFE_METHODS:
        refused = PermissionDenied(
            "External advisors have read-only access: this is not available to them.",
            reason="advisor_read_only",
        )
    else:
        return _Verdict(grant_id=grant_id)
    advisor_request_record(
        actor=user,
        method=request.method or "",
        path=path,
        status=refused.status,
        grant_id=grant_id,
        refused=refused.data["reason"],
    )
    if grant is None and not _wants_json(request) and request.method in SAFE_METHODS:
        return _Verdict(redirect("/advisor/"))
    return _Verdict(error_response(refused))


def _after(request: HttpRequest, user: AbstractBaseUser, verdict: _Verdict, status: int) -> None:
    """Audit a successful read an advisor made through another app's view."""
    path = request.path_info
    if (
        verdict.grant_id is None
        or path in LOBBY_PATHS
        or path.startswith(SELF_AUDITED_PREFIX)
        or path.startswith(settings.STATIC_URL)
        or request.method not in SAFE_METHODS
        or not 200 <= status < 300
    ):
        return
    match = getattr(request, "resolver_match", None)
    advisor_request_record(
        actor=user,
        method=request.method or "",
        path=path,
        status=status,
        grant_id=verdict.grant_id,
        conversation_id=match.kwargs.get("conversation_id") if match else None,
        ids=dict(match.kwargs) if match else None,
    )


class AdvisorGateMiddleware:
    """HTTP: an advisor without live access reaches only their page (to join) and the
    login; with access, only safe methods (every write is refused and audited before any
    view runs, whatever that view checks), and reads served by other apps' views are
    audited.  A session whose access ended is logged out (JSON 401
    ``advisor_access_ended``, pages redirect to the login).  Everyone else passes at the
    cost of the permission check the views make anyway."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        user = request.user
        if not is_advisor(user):
            return self.get_response(request)
        verdict = _gate(request, user)
        if verdict.response is not None:
            return verdict.response
        response = self.get_response(request)
        _after(request, user, verdict, response.status_code)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if getattr(request, "hub_auth", None) is not None:
            user = request.user  # set by the bearer token middleware
        else:
            user = await request.auser()
        if not getattr(user, "is_authenticated", False):
            return await self.get_response(request)
        if not await sync_to_async(is_advisor)(user):
            return await self.get_response(request)
        verdict = await sync_to_async(_gate)(request, user)
        if verdict.response is not None:
            return verdict.response
        response = await self.get_response(request)
        await sync_to_async(_after)(request, user, verdict, response.status_code)
        return response
