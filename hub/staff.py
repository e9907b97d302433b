"""Staff administration (hub services and selectors): staff users and their roles (seed 004),
admins' scheduled absences, and the reads behind the purpose-built staff pages
(``hub/staff_views.py``: ``/staff/users/``, ``/staff/derivations/``, ``/staff/audit/``).

Who may manage users:

- **admins** (the Admin role) manage every staff user and every role, and grant
  ``hub.manage_staff_users`` to individual coordinators;
- **coordinators** hold no user management by default (seed 004: "by default, this option
  is not activated"); once an admin grants them ``hub.manage_staff_users`` they create,
  edit, deactivate and delete *customer-service* users only (Operator, Contact center):
  never an admin or a coordinator, never a grant;
- nobody deactivates, deletes or demotes themselves, and the last active admin stays.

A user who holds open conversations is neither deactivated nor deleted: the refusal
(``conflict``, ``reason: owns_conversations``) says to derive them first.  A user whose name
is on records the hub keeps (conversations, messages, back-office requests) is never
deleted (``reason: has_history``): deactivate them instead.  Every change is one audit
entry (``staff.user_created`` …) in the transaction of the change; every refused attempt
is audited too (``outcome: refused``), as the back-office bridge does.

Operators' skills and capacity belong to routing: they are written through
``routing.services.operator_profile_set``.  Scheduled absences have no service of their own
in routing (only its Django admin); the create/cancel rules live here, next to the page
that uses them, and the absence's *reason* is kept in its audit entry (the routing model
has no column for it).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Count, ProtectedError, Q, RestrictedError
from django.utils import timezone

from backoffice_bridge.audit import audit_append, audit_chain_verify, audited
from hub.auth import api_token_revoke_all
from hub.exceptions import Conflict, ErrorCode, NotFound, PermissionDenied, ValidationFailed
from hub.roles import (
    PERM_BATCH_DERIVE,
    PERM_HANDLE,
    PERM_MANAGE_USERS,
    PERM_READ_AUDIT,
    Role,
    role_groups_ensure,
    role_of,
)

#: Roles a coordinator granted user management may create and edit (seed 004).
CUSTOMER_SERVICE_ROLES: tuple[Role, ...] = (Role.OPERATOR, Role.CONTACT_CENTER)
#: External advisors are not staff: hub/advisors.py lets them in and out (seed 003).
NOT_HERE: frozenset[str] = frozenset({"External advisor"})
_FIRST = (Role.ADMIN, Role.COORDINATOR, Role.CONTACT_CENTER, Role.OPERATOR)
#: Every role an admin may give, highest first (a user in several groups shows the first).
ROLE_ORDER: tuple[Role, ...] = _FIRST + tuple(
    r for r in Role if r not in _FIRST and r.value not in NOT_HERE
)
ROLE_VALUES: tuple[str, ...] = tuple(role.value for role in ROLE_ORDER)
# Django's own user-name rule (UnicodeUsernameValidator), checked here for a precise error.
USERNAME_RE = re.compile(r"^[\w.@+-]{1,150}\Z")
NAME_MAX = 150
REASON_MAX = 200

Scope = Literal["all", "customer_service"]


# --- who may do what ------------------------------------------------------------------------
def _manage_scope(actor: AbstractBaseUser) -> Scope:
    """``all`` for admins, ``customer_service`` for a coordinator granted user management;
    PermissionDenied for everyone else."""
    if not actor.has_perm(PERM_MANAGE_USERS):
        raise PermissionDenied(
            "Managing staff users needs the 'manage staff users' permission: admins hold it; "
            "a coordinator gets it only when an admin grants it."
        )
    return "all" if role_of(actor) == Role.ADMIN else "customer_service"


def _role_groups() -> dict[Role, Group]:
    groups = {g.name: g for g in Group.objects.filter(name__in=ROLE_VALUES)}
    if len(groups) < len(ROLE_VALUES):
        return role_groups_ensure()
    return {role: groups[role.value] for role in ROLE_ORDER}


def _grant_permission() -> Permission:
    app_label, codename = PERM_MANAGE_USERS.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def _roles_by_user(user_ids: list[int]) -> dict[int, Role]:
    """Each user's highest role group, in one query (an external advisor's is theirs)."""
    through = get_user_model().groups.through
    names = (*ROLE_VALUES, *NOT_HERE)
    rank = {name: index for index, name in enumerate(names)}
    best: dict[int, Role] = {}
    rows = through.objects.filter(user_id__in=user_ids, group__name__in=names).values_list(
        "user_id", "group__name"
    )
    for user_id, name in rows:
        if user_id not in best or rank[name] < rank[best[user_id].value]:
            best[user_id] = Role(name)
    return best


def _role_of_user(user: AbstractBaseUser) -> Role | None:
    role = _roles_by_user([user.pk]).get(user.pk)
    if role is None and user.is_superuser:
        return Role.ADMIN
    return role


def _check_role_choice(scope: Scope, role: str, *, field: str = "role") -> Role:
    if role not in ROLE_VALUES:
        raise ValidationFailed(
            f"Field '{field}' must be one of: {', '.join(ROLE_VALUES)}.", field=field
        )
    chosen = Role(role)
    if scope == "customer_service" and chosen not in CUSTOMER_SERVICE_ROLES:
        raise PermissionDenied(
            "Coordinators create and edit customer-service users only (Operator, Contact "
            "center); admins and coordinators are created by an admin.",
            field=field,
            allowed=[r.value for r in CUSTOMER_SERVICE_ROLES],
        )
    return chosen


def _check_target(scope: Scope, target_role: Role | None) -> None:
    if target_role is not None and target_role.value in NOT_HERE:
        raise PermissionDenied(
            "External advisors are let in and out on the advisors page, not here.",
            role=target_role.value,
        )
    if scope == "customer_service" and target_role not in CUSTOMER_SERVICE_ROLES:
        raise PermissionDenied(
            "Coordinators manage customer-service users only (Operator, Contact center); "
            f"this user is {'an ' + target_role.value if target_role else 'not one'}.",
            role=target_role.value if target_role else None,
        )


def _active_admin_ids_locked() -> list[int]:
    """Active admins (the Admin group, or superusers), rows locked in id order, so two
    admins removing each other at once cannot both succeed."""
    admins = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__name=Role.ADMIN.value) | Q(is_superuser=True))
        .values("pk")
    )
    return list(
        get_user_model()
        .objects.select_for_update()
        .filter(pk__in=admins)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _check_not_last_admin(user: AbstractBaseUser, *, what: str, field: str) -> None:
    others = [pk for pk in _active_admin_ids_locked() if pk != user.pk]
    if not others:
        raise Conflict(
            f"{_name(user)} is the last active admin: {what} would leave nobody to manage "
            "the hub. Make another user an admin first.",
            field=field,
            reason="last_admin",
        )


def _check_not_self(
    actor: AbstractBaseUser, user: AbstractBaseUser, *, what: str, field: str
) -> None:
    if actor.pk == user.pk:
        raise Conflict(
            f"You cannot {what} yourself: you would lock yourself out. Ask another admin.",
            field=field,
            reason="self",
        )


def _open_conversations(user_id: int) -> int:
    from chat.models import Conversation, ConversationStatus

    return Conversation.objects.filter(
        operator_id=user_id, status=ConversationStatus.ASSIGNED
    ).count()


def _check_no_conversations(user: AbstractBaseUser, *, what: str, field: str) -> None:
    count = _open_conversations(user.pk)
    if count:
        raise Conflict(
            f"{_name(user)} still holds {count} open conversation{'s' if count != 1 else ''}: "
            f"derive them to other operators first (the Derivations page), then {what}.",
            field=field,
            reason="owns_conversations",
            open_conversations=count,
        )


# --- field checks ---------------------------------------------------------------------------
def _name(user: AbstractBaseUser) -> str:
    return user.get_full_name() or user.get_username()  # type: ignore[attr-defined]


def _clean_name(value: str, field: str) -> str:
    value = value.strip()
    if len(value) > NAME_MAX:
        raise ValidationFailed(f"Field '{field}' is longer than {NAME_MAX}.", field=field)
    return value


def _clean_email(value: str) -> str:
    value = value.strip()
    if value:
        try:
            validate_email(value)
        except ValidationError:
            raise ValidationFailed(
                f"'{value}' is not a valid e-mail address.", field="email"
            ) from None
    return value


def _clean_username(value: str, *, exclude_id: int | None = None) -> str:
    value = value.strip()
    if not USERNAME_RE.match(value):
        raise ValidationFailed(
            "The user name must be 1 to 150 letters, digits or . @ + - _ (no spaces).",
            field="username",
        )
    User = get_user_model()
    taken = User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": value})
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise Conflict(f"The user name '{value}' is already taken.", field="username")
    return value


def _check_password(password: str, user: AbstractBaseUser) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationFailed(
            " ".join(exc.messages), field="password", problems=list(exc.messages)
        ) from None


def _check_profile(query_type_codes: list[str] | None, capacity: int | None) -> None:
    if query_type_codes is not None and not all(isinstance(c, str) for c in query_type_codes):
        raise ValidationFailed(
            "Field 'query_types' must be a list of query type codes.",
            code=ErrorCode.WRONG_TYPE,
            field="query_types",
        )
    if capacity is not None and not 0 <= capacity <= 100:
        raise ValidationFailed("capacity must be between 0 and 100.", field="capacity")


def _profile_set(
    actor: AbstractBaseUser, user: AbstractBaseUser, codes: list[str] | None, capacity: int | None
) -> None:
    from routing.services import operator_profile_set

    if codes is not None or capacity is not None:
        operator_profile_set(
            actor=actor, user_id=user.pk, query_type_codes=codes, capacity=capacity
        )


def _set_grant(user: AbstractBaseUser, granted: bool) -> None:
    if granted:
        user.user_permissions.add(_grant_permission())
    else:
        user.user_permissions.remove(_grant_permission())


def _has_grant(user_id: int) -> bool:
    app_label, codename = PERM_MANAGE_USERS.split(".")
    return (
        get_user_model()
        .user_permissions.through.objects.filter(
            user_id=user_id,
            permission__codename=codename,
            permission__content_type__app_label=app_label,
        )
        .exists()
    )


def _audit_view(user: AbstractBaseUser) -> dict[str, Any]:
    """What the audit log records of a user (never a password)."""
    row = staff_user_rows(user_ids=[user.pk])[0]
    return {
        key: row[key]
        for key in (
            "username",
            "first_name",
            "last_name",
            "email",
            "is_active",
            "role",
            "can_manage_users_granted",
            "query_types",
            "capacity",
        )
    }


def _diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


# --- reads ----------------------------------------------------------------------------------
def staff_user_rows(*, user_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Staff users as the page shows them, in a fixed number of queries: identity, role,
    the user-management grant, skills, capacity, presence and open conversations."""
    from chat.models import Conversation, ConversationStatus
    from routing.models import OperatorState

    User = get_user_model()
    users = User.objects.order_by("username")
    if user_ids is not None:
        users = users.filter(pk__in=user_ids)
    rows = list(
        users.values(
            "pk",
            "username",
            "first_name",
            "last_name",
            "email",
            "is_active",
            "is_superuser",
            "last_login",
            "date_joined",
            "operator_state__presence",
            "operator_state__capacity",
        )
    )
    ids = [row["pk"] for row in rows]
    roles = _roles_by_user(ids)
    app_label, codename = PERM_MANAGE_USERS.split(".")
    granted = set(
        User.user_permissions.through.objects.filter(
            user_id__in=ids,
            permission__codename=codename,
            permission__content_type__app_label=app_label,
        ).values_list("user_id", flat=True)
    )
    skills: dict[int, list[str]] = {}
    for user_id, code in (
        OperatorState.query_types.through.objects.filter(operatorstate__user_id__in=ids)
        .order_by("querytype__menu_position", "querytype__name")
        .values_list("operatorstate__user_id", "querytype__code")
    ):
        skills.setdefault(user_id, []).append(code)
    open_counts = dict(
        Conversation.objects.filter(operator_id__in=ids, status=ConversationStatus.ASSIGNED)
        .values("operator_id")
        .annotate(n=Count("pk"))
        .values_list("operator_id", "n")
    )
    default_capacity = OperatorState._meta.get_field("capacity").default
    out = []
    for row in rows:
        role = roles.get(row["pk"]) or (Role.ADMIN if row["is_superuser"] else None)
        out.append(
            {
                "id": row["pk"],
                "username": row["username"],
                "first_name": row["first_name"],
                "last_name": row["last_name"],
                "name": f"{row['first_name']} {row['last_name']}".strip() or row["username"],
                "email": row["email"],
                "is_active": row["is_active"],
                "role": role.value if role else None,
                # Admins hold user management by role; a coordinator only when granted.
                "can_manage_users": role == Role.ADMIN or row["pk"] in granted,
                "can_manage_users_granted": row["pk"] in granted,
                "query_types": skills.get(row["pk"], []),
                "capacity": row["operator_state__capacity"]
                if row["operator_state__capacity"] is not None
                else default_capacity,
                "presence": row["operator_state__presence"] or "offline",
                "open_conversations": open_counts.get(row["pk"], 0),
                "last_login": row["last_login"].isoformat() if row["last_login"] else None,
                "date_joined": row["date_joined"].isoformat(),
            }
        )
    return out


def staff_users_list(*, actor: AbstractBaseUser) -> dict[str, Any]:
    """The users page's data: the users the actor may manage (admins: everyone; a granted
    coordinator: customer-service users), the roles they may give, the active query types,
    and what the actor may do.  PermissionDenied without user management."""
    from routing.models import QueryType

    scope = _manage_scope(actor)
    rows = [row for row in staff_user_rows() if row["role"] not in NOT_HERE]
    if scope == "customer_service":
        allowed = {r.value for r in CUSTOMER_SERVICE_ROLES}
        rows = [row for row in rows if row["role"] in allowed]
        roles = [r.value for r in CUSTOMER_SERVICE_ROLES]
    else:
        roles = list(ROLE_VALUES)
    for row in rows:
        row["is_self"] = row["id"] == actor.pk
    return {
        "users": rows,
        "roles": roles,
        "query_types": list(
            QueryType.objects.filter(active=True)
            .order_by("menu_position", "name")
            .values("code", "name")
        ),
        "can": {"grant": scope == "all", "all_roles": scope == "all"},
        "self_id": actor.pk,
    }


def _load_target(user_id: int, *, lock: bool = True) -> AbstractBaseUser:
    users = get_user_model().objects.all()
    if lock:
        users = users.select_for_update()
    user = users.filter(pk=user_id).first()
    if user is None:
        raise NotFound(f"No staff user with id {user_id}.", field="user_id", user_id=user_id)
    return user


# --- users: writes --------------------------------------------------------------------------
@audited("staff.user_create")
def staff_user_create(
    *,
    actor: AbstractBaseUser,
    username: str,
    password: str,
    role: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    query_type_codes: list[str] | None = None,
    capacity: int | None = None,
    can_manage_users: bool = False,
) -> dict[str, Any]:
    """Create an active staff user with one role and, optionally, their skills and capacity.

    Raises PermissionDenied (no user management; a coordinator choosing a role that is
    not customer service, or granting user management), ValidationFailed (user name,
    e-mail, password too weak, capacity, a grant for a role that is not Coordinator),
    Conflict (user name taken), NotFound (unknown query type).  Audited as
    ``staff.user_created``.
    """
    scope = _manage_scope(actor)
    chosen = _check_role_choice(scope, role)
    if can_manage_users:
        if scope != "all":
            raise PermissionDenied("Only admins grant user management.", field="can_manage_users")
        if chosen != Role.COORDINATOR:
            raise ValidationFailed(
                "User management is granted to coordinators only (admins hold it by role).",
                field="can_manage_users",
            )
    _check_profile(query_type_codes, capacity)
    User = get_user_model()
    with transaction.atomic():
        username = _clean_username(username)
        user = User(
            **{User.USERNAME_FIELD: username},
            first_name=_clean_name(first_name, "first_name"),
            last_name=_clean_name(last_name, "last_name"),
            email=_clean_email(email),
            is_active=True,
            # Admins and coordinators may use the Django admin for plain record editing
            # (hub.accounts.staff_user_ensure does the same).
            is_staff=chosen in (Role.ADMIN, Role.COORDINATOR),
        )
        _check_password(password, user)
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # the same name, created by someone else a moment ago
            raise Conflict(
                f"The user name '{username}' is already taken.", field="username"
            ) from None
        user.groups.set([_role_groups()[chosen]])
        if can_manage_users:
            _set_grant(user, True)
        _profile_set(actor, user, query_type_codes, capacity)
        after = _audit_view(user)
        audit_append(
            action="staff.user_created",
            actor=actor,
            object_type="user",
            object_id=user.pk,
            after=after,
        )
    return staff_user_rows(user_ids=[user.pk])[0]


@audited("staff.user_update")
def staff_user_update(
    *,
    actor: AbstractBaseUser,
    user_id: int,
    username: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    email: str | None = None,
    is_active: bool | None = None,
    role: str | None = None,
    query_type_codes: list[str] | None = None,
    capacity: int | None = None,
    can_manage_users: bool | None = None,
) -> dict[str, Any]:
    """Change what is given (None: unchanged).  ``is_active=False`` deactivates: the user
    can no longer sign in, their API tokens are revoked and they go offline.

    Besides ``staff_user_create``'s refusals: PermissionDenied for a coordinator editing a
    user who is not customer service; Conflict ``reason: self`` (deactivating or changing
    the role of oneself), ``reason: last_admin``, ``reason: owns_conversations``
    (deactivating a user who holds open conversations: derive them first);
    ValidationFailed for skills of a user who stays inactive.  Audited as
    ``staff.user_updated``, ``staff.user_deactivated`` or ``staff.user_reactivated``.
    """
    from routing.services import presence_set

    scope = _manage_scope(actor)
    _check_profile(query_type_codes, capacity)
    with transaction.atomic():
        user = _load_target(user_id)
        current = _role_of_user(user)
        _check_target(scope, current)
        chosen = _check_role_choice(scope, role) if role is not None else current
        if can_manage_users is not None:
            if scope != "all":
                raise PermissionDenied(
                    "Only admins grant user management.", field="can_manage_users"
                )
            if can_manage_users and chosen != Role.COORDINATOR:
                raise ValidationFailed(
                    "User management is granted to coordinators only (admins hold it by role).",
                    field="can_manage_users",
                )
        role_changes = role is not None and chosen != current
        deactivating = is_active is False and user.is_active
        reactivating = is_active is True and not user.is_active
        if role_changes:
            _check_not_self(actor, user, what="change the role of", field="role")
            if current == Role.ADMIN:
                _check_not_last_admin(user, what="changing their role", field="role")
        if deactivating:
            _check_not_self(actor, user, what="deactivate", field="is_active")
            if current == Role.ADMIN:
                _check_not_last_admin(user, what="deactivating them", field="is_active")
            _check_no_conversations(user, what="deactivate the account", field="is_active")
        profile = query_type_codes is not None or capacity is not None
        if profile and not user.is_active and not reactivating:
            raise ValidationFailed(
                "This user is deactivated: reactivate them to change their query types or "
                "capacity.",
                field="query_types" if query_type_codes is not None else "capacity",
            )
        before = _audit_view(user)
        if profile and user.is_active:
            _profile_set(actor, user, query_type_codes, capacity)
        if deactivating and before["role"] is not None:
            fresh = get_user_model().objects.get(pk=user.pk)
            if fresh.has_perm(PERM_HANDLE):
                presence_set(actor=fresh, presence="offline")
        User = get_user_model()
        if username is not None:
            setattr(user, User.USERNAME_FIELD, _clean_username(username, exclude_id=user.pk))
        if first_name is not None:
            user.first_name = _clean_name(first_name, "first_name")
        if last_name is not None:
            user.last_name = _clean_name(last_name, "last_name")
        if email is not None:
            user.email = _clean_email(email)
        if is_active is not None:
            user.is_active = is_active
        if chosen is not None:
            user.is_staff = chosen in (Role.ADMIN, Role.COORDINATOR)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # renamed to a name someone took a moment ago
            raise Conflict("That user name is already taken.", field="username") from None
        if role_changes and chosen is not None:
            user.groups.set([_role_groups()[chosen]])
            if chosen != Role.COORDINATOR:
                _set_grant(user, False)  # a grant means something for coordinators only
        if can_manage_users is not None and (chosen == Role.COORDINATOR or not can_manage_users):
            _set_grant(user, can_manage_users)
        if profile and reactivating:
            _profile_set(actor, user, query_type_codes, capacity)
        if deactivating:
            api_token_revoke_all(user_id=user.pk)
        old, new = _diff(before, _audit_view(user))
        if old or new:
            action = "staff.user_updated"
            if deactivating:
                action = "staff.user_deactivated"
            elif reactivating:
                action = "staff.user_reactivated"
            audit_append(
                action=action,
                actor=actor,
                object_type="user",
                object_id=user.pk,
                before=old,
                after=new,
            )
    return staff_user_rows(user_ids=[user.pk])[0]


@audited("staff.user_password_reset")
def staff_user_password_reset(
    *, actor: AbstractBaseUser, user_id: int, password: str
) -> dict[str, Any]:
    """Give a user a new password (the admin tells them); their API tokens are revoked and
    their other sessions end.  PermissionDenied as for ``staff_user_update``;
    ValidationFailed for a weak password.  Audited as ``staff.user_password_reset``."""
    scope = _manage_scope(actor)
    with transaction.atomic():
        user = _load_target(user_id)
        _check_target(scope, _role_of_user(user))
        _check_password(password, user)
        user.set_password(password)
        user.save(update_fields=["password"])
        revoked = api_token_revoke_all(user_id=user.pk)
        audit_append(
            action="staff.user_password_reset",
            actor=actor,
            object_type="user",
            object_id=user.pk,
            after={"username": user.get_username(), "api_tokens_revoked": revoked},
        )
    return staff_user_rows(user_ids=[user.pk])[0]


@audited("staff.user_delete")
def staff_user_delete(*, actor: AbstractBaseUser, user_id: int) -> dict[str, Any]:
    """Delete a user who has left no trace the hub must keep.

    Refused (Conflict) for oneself (``reason: self``), the last active admin
    (``last_admin``), a user holding open conversations (``owns_conversations``: derive
    them first) and a user whose name is on kept records — conversations, messages,
    derivations, back-office requests — (``has_history``: deactivate instead, which keeps
    the history readable and the account unusable).  Audited as ``staff.user_deleted``.
    """
    scope = _manage_scope(actor)
    with transaction.atomic():
        user = _load_target(user_id)
        role = _role_of_user(user)
        _check_target(scope, role)
        _check_not_self(actor, user, what="delete", field="user_id")
        if role == Role.ADMIN and user.is_active:
            _check_not_last_admin(user, what="deleting them", field="user_id")
        _check_no_conversations(user, what="delete the account", field="user_id")
        before = _audit_view(user)
        try:
            with transaction.atomic():
                user.delete()
        except (ProtectedError, RestrictedError) as exc:
            kept = getattr(exc, "protected_objects", None) or exc.restricted_objects
            kinds = sorted({str(obj._meta.verbose_name_plural) for obj in kept})
            raise Conflict(
                f"{_name(user)} cannot be deleted: their name is on records the hub keeps "
                f"({', '.join(kinds)}). Deactivate the account instead.",
                field="user_id",
                reason="has_history",
                records=kinds,
            ) from None
        audit_append(
            action="staff.user_deleted",
            actor=actor,
            object_type="user",
            object_id=user_id,
            before=before,
        )
    return {"id": user_id, "deleted": True}


# --- derivations ----------------------------------------------------------------------------
def _derive_access(actor: AbstractBaseUser) -> None:
    if not actor.has_perm(PERM_BATCH_DERIVE):
        raise PermissionDenied(
            "Only admins derive all of an operator's conversations and plan absences."
        )


def _absent_now_ids(now: datetime) -> set[int]:
    from routing.models import ScheduledAbsence

    return set(
        ScheduledAbsence.objects.filter(starts_at__lte=now, ends_at__gt=now).values_list(
            "operator_id", flat=True
        )
    )


def derivation_operators(*, actor: AbstractBaseUser) -> list[dict[str, Any]]:
    """Everyone a derivation may start from or go to: active operators, and any account
    (a deactivated one, someone who left) still holding open conversations.  With presence,
    load, capacity, skills and whether a scheduled absence is running now."""
    _derive_access(actor)
    from chat.models import Conversation, ConversationStatus

    holders = set(
        Conversation.objects.filter(status=ConversationStatus.ASSIGNED, operator__isnull=False)
        .values_list("operator_id", flat=True)
        .distinct()
    )
    app_label, codename = PERM_HANDLE.split(".")
    handlers = set(
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(
                groups__permissions__codename=codename,
                groups__permissions__content_type__app_label=app_label,
            )
            | Q(is_superuser=True)
        )
        .values_list("pk", flat=True)
    )
    absent = _absent_now_ids(timezone.now())
    rows = staff_user_rows(user_ids=sorted(holders | handlers))
    return [
        {
            "id": row["id"],
            "name": row["name"],
            "username": row["username"],
            "is_active": row["is_active"],
            "role": row["role"],
            "presence": row["presence"],
            "load": row["open_conversations"],
            "capacity": row["capacity"],
            "query_types": row["query_types"],
            "absent_now": row["id"] in absent,
            "can_receive": row["id"] in handlers,
        }
        for row in rows
    ]


def operator_conversations_list(
    *, actor: AbstractBaseUser, operator_id: int, limit: int = 200
) -> dict[str, Any]:
    """One operator's open conversations (what a derivation would move), oldest first: the
    first ``limit`` and the ``total``."""
    _derive_access(actor)
    from chat.models import Conversation, ConversationStatus
    from chat.selectors import conversation_dict

    user = get_user_model().objects.filter(pk=operator_id).first()
    if user is None:
        raise NotFound(
            f"No operator with id {operator_id}.", field="operator_id", operator_id=operator_id
        )
    conversations = (
        Conversation.objects.filter(operator_id=operator_id, status=ConversationStatus.ASSIGNED)
        .select_related("customer", "operator", "query_type", "resolution")
        .order_by("created_at")
    )
    return {
        "operator": {"id": user.pk, "name": _name(user)},
        "conversations": [conversation_dict(c) for c in conversations[:limit]],
        "total": conversations.count(),
    }


# --- scheduled absences ---------------------------------------------------------------------
def _absence_dict(
    absence: Any, names: dict[int, str], reasons: dict[str, str], now: datetime
) -> dict[str, Any]:
    if absence.starts_at > now:
        status = "scheduled"
    elif absence.ends_at > now:
        status = "active"
    else:
        status = "ended"

    def person(user_id: int | None) -> dict[str, Any] | None:
        return None if user_id is None else {"id": user_id, "name": names.get(user_id, "?")}

    return {
        "id": absence.pk,
        "operator": person(absence.operator_id),
        "starts_at": absence.starts_at.isoformat(),
        "ends_at": absence.ends_at.isoformat(),
        "to_operator": person(absence.to_operator_id),
        "reason": reasons.get(str(absence.pk), ""),
        "status": status,
        "derived_at": absence.derived_at.isoformat() if absence.derived_at else None,
        "created_by": person(absence.created_by_id),
        "created_at": absence.created_at.isoformat(),
    }


def _absence_dicts(absences: list[Any], now: datetime) -> list[dict[str, Any]]:
    from backoffice_bridge.models import AuditEntry

    user_ids = {
        user_id
        for a in absences
        for user_id in (a.operator_id, a.to_operator_id, a.created_by_id)
        if user_id is not None
    }
    names = {row["id"]: row["name"] for row in staff_user_rows(user_ids=sorted(user_ids))}
    reasons = {
        object_id: (after or {}).get("reason", "")
        for object_id, after in AuditEntry.objects.filter(
            action="staff.absence_created",
            object_type="scheduled_absence",
            object_id__in=[str(a.pk) for a in absences],
        ).values_list("object_id", "after")
    }
    return [_absence_dict(a, names, reasons, now) for a in absences]


def scheduled_absences_list(
    *, actor: AbstractBaseUser, ended_days: int = 14
) -> list[dict[str, Any]]:
    """Running and planned absences, and those ended in the last ``ended_days`` days,
    soonest first."""
    from routing.models import ScheduledAbsence

    _derive_access(actor)
    now = timezone.now()
    absences = list(
        ScheduledAbsence.objects.filter(ends_at__gt=now - timedelta(days=ended_days)).order_by(
            "starts_at", "pk"
        )
    )
    return _absence_dicts(absences, now)


def _absence_person(user_id: int, field: str) -> AbstractBaseUser:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.has_perm(PERM_HANDLE):
        raise NotFound(f"No active operator with id {user_id}.", field=field, operator_id=user_id)
    return user


@audited("staff.absence_create")
def scheduled_absence_create(
    *,
    actor: AbstractBaseUser,
    operator_id: int,
    starts_at: datetime,
    ends_at: datetime,
    to_operator_id: int | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """Plan an operator's absence: from ``starts_at`` they receive no conversations and, at
    the scheduler's next tick after it begins, their open ones go to ``to_operator_id`` (or
    are spread when None or when that colleague cannot take them: routing.absence).

    Admins only (PermissionDenied).  ValidationFailed: times not aware, the end not after
    the start, an end in the past, the colleague being the operator, a reason too long;
    NotFound: operator or colleague; Conflict: an absence of the same operator overlapping
    (``data.absence_id``).  Audited as ``staff.absence_created`` (with the reason).
    """
    from routing.models import ScheduledAbsence

    _derive_access(actor)
    now = timezone.now()
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if timezone.is_naive(value):
            raise ValidationFailed(
                f"'{name}' needs a time zone offset (e.g. 2026-12-01T09:00+01:00).", field=name
            )
    if ends_at <= starts_at:
        raise ValidationFailed("The absence must end after it starts.", field="ends_at")
    if ends_at <= now:
        raise ValidationFailed("The absence would already be over.", field="ends_at")
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise ValidationFailed(f"The reason is longer than {REASON_MAX}.", field="reason")
    if to_operator_id is not None and to_operator_id == operator_id:
        raise ValidationFailed(
            "The colleague who takes the conversations must be someone else.",
            field="to_operator_id",
        )
    with transaction.atomic():
        operator = _absence_person(operator_id, "operator_id")
        if to_operator_id is not None:
            _absence_person(to_operator_id, "to_operator_id")
        # Lock the operator's row so two admins planning overlapping absences serialise.
        get_user_model().objects.select_for_update().filter(pk=operator.pk).first()
        overlap = (
            ScheduledAbsence.objects.filter(
                operator_id=operator.pk, starts_at__lt=ends_at, ends_at__gt=starts_at
            )
            .values_list("pk", flat=True)
            .first()
        )
        if overlap is not None:
            raise Conflict(
                f"{_name(operator)} already has an absence in that time (#{overlap}).",
                field="starts_at",
                absence_id=overlap,
            )
        absence = ScheduledAbsence.objects.create(
            operator=operator,
            starts_at=starts_at,
            ends_at=ends_at,
            to_operator_id=to_operator_id,
            created_by=actor,
        )
        audit_append(
            action="staff.absence_created",
            actor=actor,
            object_type="scheduled_absence",
            object_id=absence.pk,
            after={
                "operator_id": operator.pk,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "to_operator_id": to_operator_id,
                "reason": reason,
            },
        )
        return _absence_dicts([absence], now)[0]


@audited("staff.absence_cancel")
def scheduled_absence_cancel(*, actor: AbstractBaseUser, absence_id: int) -> dict[str, Any]:
    """Cancel a planned absence (the row goes) or end a running one now (routing gives the
    operator conversations again).  Conversations already derived stay where they went.
    NotFound; Conflict when it is already over.  Audited as ``staff.absence_cancelled``."""
    from routing.models import ScheduledAbsence

    _derive_access(actor)
    now = timezone.now()
    with transaction.atomic():
        absence = ScheduledAbsence.objects.select_for_update().filter(pk=absence_id).first()
        if absence is None:
            raise NotFound(
                f"No scheduled absence with id {absence_id}.",
                field="absence_id",
                absence_id=absence_id,
            )
        if absence.ends_at <= now:
            raise Conflict("This absence is already over.", field="absence_id")
        before = {"starts_at": absence.starts_at, "ends_at": absence.ends_at}
        if absence.starts_at > now:
            ended = "cancelled"
            result = _absence_dicts([absence], now)[0] | {"status": "cancelled"}
            absence.delete()
        else:
            ended = "ended_early"
            absence.ends_at = max(now, absence.starts_at + timedelta(microseconds=1))
            absence.save(update_fields=["ends_at"])
            result = _absence_dicts([absence], now)[0] | {"status": "ended"}
        audit_append(
            action="staff.absence_cancelled",
            actor=actor,
            object_type="scheduled_absence",
            object_id=absence_id,
            before=before,
            after={"ends_at": None if ended == "cancelled" else absence.ends_at, "how": ended},
        )
    return result


# --- the audit log --------------------------------------------------------------------------
def audit_chain_report(*, actor: AbstractBaseUser) -> dict[str, Any]:
    """Walk the audit chain (``backoffice_bridge.audit.audit_chain_verify``) for the audit
    page.  PermissionDenied without ``backoffice_bridge.read_audit_log``."""
    if not actor.has_perm(PERM_READ_AUDIT):
        raise PermissionDenied("Only administrators read the audit log.")
    report = audit_chain_verify()
    return {
        "ok": report.ok,
        "checked": report.checked,
        "sequence": report.sequence,
        "reason": report.reason,
        "problem": report.problem,
        "verified_at": timezone.now().isoformat(),
    }


def audit_filter_choices(*, actor: AbstractBaseUser) -> dict[str, Any]:
    """The audit page's filter choices: the actions in the log and the staff users."""
    from backoffice_bridge.models import AuditEntry

    if not actor.has_perm(PERM_READ_AUDIT):
        raise PermissionDenied("Only administrators read the audit log.")
    actions = sorted(AuditEntry.objects.order_by().values_list("action", flat=True).distinct())
    users = get_user_model().objects.order_by("username")
    actors = [
        {
            "id": row["pk"],
            "username": row["username"],
            "name": f"{row['first_name']} {row['last_name']}".strip() or row["username"],
        }
        for row in users.values("pk", "username", "first_name", "last_name")
    ]
    return {"actions": actions, "actors": actors}
