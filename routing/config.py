"""Routing configuration services and selectors: the catalogue coordinators keep — query types
(name, priority, default, menu position, keywords), resolution reasons per type, operators'
skills and capacity, and the type menu — for the coordinators' routing page and its REST
endpoints (``routing/config_views.py``).

Every call needs ``routing.manage_routing`` (Coordinator, Admin).  Input is checked in full
before anything is written (``invalid_value`` / ``conflict`` with ``data.field``), and each
write runs in one transaction under a row lock.

**Concurrent edits.**  Query types, reasons and operator profiles have no version column;
each row read here carries an ``etag`` (a digest of its editable fields) that a write sends
back, and the write compares it with the row under its lock: a change someone else saved in
between is refused with ``stale_version`` (``data.etag``: the current one) instead of being
silently overwritten.  The routing settings have a real ``version``.

**Keywords** pick a type from a customer's free-text answer to the type menu
(``routing.classify``: whole words, accents and case ignored, and an answer matching two
types matches nothing).  So a keyword that another active type already has (as a keyword or
as its name) could never route, and is refused with ``conflict`` naming that type; a
number is refused too (numbers choose menu entries).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from hub.exceptions import Conflict, ErrorCode, NotFound, PermissionDenied, ValidationFailed
from hub.roles import PERM_HANDLE, PERM_MANAGE_ROUTING
from routing.classify import _words
from routing.models import OperatorState, QueryType, ResolutionReason, RoutingSettings
from routing.selectors import _operators
from routing.services import operator_profile_set, routing_settings_get

CODE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
CODE_MAX = 40
NAME_MAX = 80
REASON_NAME_MAX = 120
KEYWORD_MAX = 60
KEYWORDS_MAX = 50
ORDER_MAX = 1000  # priority, menu and list positions
INTRO_MAX = 300


def _require_manager(actor: AbstractBaseUser) -> None:
    if not (getattr(actor, "is_authenticated", False) and actor.has_perm(PERM_MANAGE_ROUTING)):
        raise PermissionDenied(
            "Only coordinators and admins configure routing.", permission=PERM_MANAGE_ROUTING
        )


def _etag(values: dict[str, Any]) -> str:
    raw = json.dumps(values, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _stale(kind: str, current: str, **data: Any) -> Conflict:
    return Conflict(
        f"Someone else saved this {kind} after you loaded it. Reload it and edit again.",
        code=ErrorCode.STALE_VERSION,
        etag=current,
        **data,
    )


# --- reads --------------------------------------------------------------------------------
def query_type_dict(query_type: QueryType) -> dict[str, Any]:
    editable = {
        "code": query_type.code,
        "name": query_type.name,
        "priority": query_type.priority,
        "is_default": query_type.is_default,
        "active": query_type.active,
        "menu_position": query_type.menu_position,
        "keywords": list(query_type.keywords or []),
    }
    return {"id": query_type.pk, **editable, "etag": _etag(editable)}


def resolution_dict(reason: ResolutionReason, type_ids: list[int]) -> dict[str, Any]:
    editable = {
        "name": reason.name,
        "active": reason.active,
        "position": reason.position,
        "query_type_ids": sorted(type_ids),
    }
    return {"id": reason.pk, **editable, "etag": _etag(editable)}


def _operator_etag(capacity: int, type_ids: Sequence[int]) -> str:
    return _etag({"capacity": capacity, "query_type_ids": sorted(type_ids)})


def routing_config_get(*, actor: AbstractBaseUser) -> dict[str, Any]:
    """Everything the routing page edits: every query type (inactive ones too) in menu
    order, every resolution reason in list order with its types (empty: every type), every
    operator with presence, load, capacity and skills (empty: every type), and the type
    menu settings.  A fixed number of queries."""
    _require_manager(actor)
    types = [query_type_dict(t) for t in QueryType.objects.order_by("menu_position", "name")]
    links: dict[int, list[int]] = {}
    for reason_id, type_id in ResolutionReason.query_types.through.objects.values_list(
        "resolutionreason_id", "querytype_id"
    ):
        links.setdefault(reason_id, []).append(type_id)
    reasons = [
        resolution_dict(r, links.get(r.pk, []))
        for r in ResolutionReason.objects.order_by("position", "name")
    ]
    operators = [
        {**o, "etag": _operator_etag(o["capacity"], o["query_type_ids"])} for o in _operators()
    ]
    return {
        "query_types": types,
        "resolutions": reasons,
        "operators": operators,
        "settings": routing_menu_dict(routing_settings_get()),
    }


def routing_menu_dict(settings_row: RoutingSettings) -> dict[str, Any]:
    return {
        "type_menu_enabled": settings_row.type_menu_enabled,
        "type_menu_intro": settings_row.type_menu_intro,
        "version": settings_row.version,
    }


# --- field checks (each names its field) ----------------------------------------------------
def _order(value: int, field: str) -> int:
    if not 0 <= value <= ORDER_MAX:
        raise ValidationFailed(f"{field} must be between 0 and {ORDER_MAX}.", field=field)
    return value


def _name(value: str, *, field: str = "name", limit: int = NAME_MAX) -> str:
    name = " ".join(value.split())
    if not name:
        raise ValidationFailed("The name may not be empty.", field=field)
    if len(name) > limit:
        raise ValidationFailed(f"The name is longer than {limit} characters.", field=field)
    return name


def _code(value: str) -> str:
    code = value.strip().lower()
    if not code:
        raise ValidationFailed("The code may not be empty.", field="code")
    if len(code) > CODE_MAX or not CODE.fullmatch(code):
        raise ValidationFailed(
            f"A code is lower-case letters and digits joined by single hyphens, at most "
            f"{CODE_MAX} characters, e.g. card-payments.",
            field="code",
            value=value,
        )
    return code


def _keywords(values: Sequence[str]) -> list[str]:
    """Spaces collapsed, duplicates (ignoring case and accents) dropped, order kept."""
    if len(values) > KEYWORDS_MAX:
        raise ValidationFailed(f"A type has at most {KEYWORDS_MAX} keywords.", field="keywords")
    kept: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(values):
        if not isinstance(raw, str):
            raise ValidationFailed(
                "keywords is a list of strings.", code=ErrorCode.WRONG_TYPE, field="keywords"
            )
        keyword = " ".join(raw.split())
        words = _words(keyword)
        if not keyword:
            continue
        if len(keyword) > KEYWORD_MAX:
            raise ValidationFailed(
                f"The keyword “{keyword[:20]}…” is longer than {KEYWORD_MAX} characters.",
                field="keywords",
                index=index,
                keyword=keyword,
            )
        if not words:
            raise ValidationFailed(
                f"The keyword “{keyword}” has no letters or digits.",
                field="keywords",
                index=index,
                keyword=keyword,
            )
        if all(w.isdigit() for w in words):
            raise ValidationFailed(
                f"The keyword “{keyword}” is a number; numbers choose the menu's entries.",
                field="keywords",
                index=index,
                keyword=keyword,
            )
        folded = " ".join(words)
        if folded not in seen:
            seen.add(folded)
            kept.append(keyword)
    return kept


def _phrases_check(*, name: str, keywords: list[str], except_id: int | None) -> None:
    """No keyword (nor the name) of this type may be a keyword or the name of another
    active type: the customer's answer would match both, which matches nothing."""
    others = QueryType.objects.filter(active=True)
    if except_id is not None:
        others = others.exclude(pk=except_id)
    taken: dict[str, QueryType] = {}
    for other in others:
        for phrase in [other.name, *[str(k) for k in other.keywords or []]]:
            taken.setdefault(" ".join(_words(phrase)), other)
    for index, keyword in enumerate(keywords):
        holder = taken.get(" ".join(_words(keyword)))
        if holder is not None:
            raise Conflict(
                f"“{keyword}” already picks {holder.name}; an answer with it would match "
                "both types and route to neither.",
                field="keywords",
                index=index,
                keyword=keyword,
                query_type_id=holder.pk,
            )
    holder = taken.get(" ".join(_words(name)))
    if holder is not None:
        raise Conflict(
            f"“{name}” is a keyword of {holder.name}; choose another name.",
            field="name",
            query_type_id=holder.pk,
        )


def _names_free(*, code: str | None, name: str, except_id: int | None) -> None:
    others = (
        QueryType.objects.all() if except_id is None else QueryType.objects.exclude(pk=except_id)
    )
    if code is not None:
        holder = others.filter(code=code).values_list("pk", flat=True).first()
        if holder is not None:
            raise Conflict(
                f"The code {code} is used by another query type.",
                field="code",
                query_type_id=holder,
            )
    holder = others.filter(name__iexact=name).values_list("pk", flat=True).first()
    if holder is not None:
        raise Conflict(
            f"A query type named {name} exists already.", field="name", query_type_id=holder
        )


def _active_types(ids: Sequence[int], *, field: str = "query_type_ids") -> list[QueryType]:
    wanted = sorted(set(ids))
    found = {t.pk: t for t in QueryType.objects.filter(pk__in=wanted, active=True)}
    for type_id in wanted:
        if type_id not in found:
            raise NotFound("No active query type with this id.", field=field, query_type_id=type_id)
    return [found[i] for i in wanted]


# --- query types ------------------------------------------------------------------------------
@transaction.atomic
def query_type_create(
    *,
    actor: AbstractBaseUser,
    code: str,
    name: str,
    priority: int = 100,
    menu_position: int = 0,
    keywords: Sequence[str] = (),
    is_default: bool = False,
    active: bool = True,
) -> dict[str, Any]:
    """A new query type.  ``is_default`` takes the default from the type that had it.

    Errors: PermissionDenied; ValidationFailed (``code``, ``name``, ``priority``,
    ``menu_position``, ``keywords``, ``is_default`` on an inactive type); Conflict (the
    code or name is taken; a keyword picks another type)."""
    _require_manager(actor)
    query_type = QueryType(
        code=_code(code),
        name=_name(name),
        priority=_order(priority, "priority"),
        menu_position=_order(menu_position, "menu_position"),
        keywords=_keywords(keywords),
        is_default=is_default,
        active=active,
    )
    if is_default and not active:
        raise ValidationFailed("The default type must be active.", field="is_default")
    _names_free(code=query_type.code, name=query_type.name, except_id=None)
    if active:
        _phrases_check(name=query_type.name, keywords=query_type.keywords, except_id=None)
    if is_default:
        QueryType.objects.select_for_update().filter(is_default=True).update(is_default=False)
    _save_type(query_type)
    return query_type_dict(query_type)


def _save_type(query_type: QueryType, **kwargs: Any) -> None:
    try:
        with transaction.atomic():
            query_type.save(**kwargs)
    except IntegrityError:
        # A concurrent save took the code or name first: the same Conflict as the check.
        _names_free(code=query_type.code, name=query_type.name, except_id=query_type.pk)
        raise


@transaction.atomic
def query_type_update(
    *,
    actor: AbstractBaseUser,
    query_type_id: int,
    etag: str,
    code: str | None = None,
    name: str | None = None,
    priority: int | None = None,
    menu_position: int | None = None,
    keywords: Sequence[str] | None = None,
    is_default: bool | None = None,
    active: bool | None = None,
) -> dict[str, Any]:
    """Change the given fields (None: unchanged) of the type the editor loaded with
    ``etag``.  The code cannot change (widgets, entry points and hours refer to it).  The
    default moves by making another type the default; the default type cannot be turned
    off or retired (``active`` false) until another one is.

    Errors: those of ``query_type_create``; NotFound; Conflict ``stale_version``."""
    _require_manager(actor)
    query_type = QueryType.objects.select_for_update().filter(pk=query_type_id).first()
    if query_type is None:
        raise NotFound("No such query type.", query_type_id=query_type_id)
    current = query_type_dict(query_type)["etag"]
    if etag != current:
        raise _stale("query type", current, query_type_id=query_type.pk)
    if code is not None and _code(code) != query_type.code:
        raise ValidationFailed(
            "The code cannot change: web chat widgets, entry points and opening hours use it. "
            "Create a new type instead.",
            field="code",
        )
    if name is not None:
        query_type.name = _name(name)
    if priority is not None:
        query_type.priority = _order(priority, "priority")
    if menu_position is not None:
        query_type.menu_position = _order(menu_position, "menu_position")
    if keywords is not None:
        query_type.keywords = _keywords(keywords)
    if active is not None:
        query_type.active = active
    if is_default is False and query_type.is_default:
        raise ValidationFailed(
            "There must be a default type: make another type the default instead.",
            field="is_default",
        )
    if query_type.is_default and not query_type.active:
        raise ValidationFailed(
            "The default type cannot be retired; make another type the default first.",
            field="active",
        )
    if is_default and not query_type.active:
        raise ValidationFailed("The default type must be active.", field="is_default")
    _names_free(code=None, name=query_type.name, except_id=query_type.pk)
    if query_type.active:
        _phrases_check(
            name=query_type.name, keywords=list(query_type.keywords), except_id=query_type.pk
        )
    if is_default and not query_type.is_default:
        QueryType.objects.select_for_update().filter(is_default=True).update(is_default=False)
        query_type.is_default = True
    _save_type(query_type)
    return query_type_dict(query_type)


# --- resolution reasons ---------------------------------------------------------------------
def _reason_name_free(name: str, *, except_id: int | None) -> None:
    others = ResolutionReason.objects.filter(name__iexact=name)
    if except_id is not None:
        others = others.exclude(pk=except_id)
    holder = others.values_list("pk", flat=True).first()
    if holder is not None:
        raise Conflict(
            f"A resolution reason named {name} exists already.",
            field="name",
            resolution_id=holder,
        )


@transaction.atomic
def resolution_create(
    *,
    actor: AbstractBaseUser,
    name: str,
    position: int | None = None,
    active: bool = True,
    query_type_ids: Sequence[int] = (),
) -> dict[str, Any]:
    """A new resolution reason for these types (none: every type), placed last unless a
    position is given.  Errors: PermissionDenied; ValidationFailed (``name``,
    ``position``); NotFound (``query_type_ids``); Conflict (the name is taken)."""
    _require_manager(actor)
    clean_name = _name(name, limit=REASON_NAME_MAX)
    types = _active_types(query_type_ids)
    if position is None:
        last = ResolutionReason.objects.order_by("-position").values_list("position", flat=True)
        position = min((last.first() or 0) + 1, ORDER_MAX)
    reason = ResolutionReason(name=clean_name, position=_order(position, "position"), active=active)
    _reason_name_free(clean_name, except_id=None)
    reason.save()
    reason.query_types.set(types)
    return resolution_dict(reason, [t.pk for t in types])


@transaction.atomic
def resolution_update(
    *,
    actor: AbstractBaseUser,
    resolution_id: int,
    etag: str,
    name: str | None = None,
    position: int | None = None,
    active: bool | None = None,
    query_type_ids: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Change the given fields of the reason the editor loaded with ``etag``.  A reason
    no longer offered is made inactive, never deleted: closed conversations keep it.
    Errors: those of ``resolution_create``; NotFound; Conflict ``stale_version``."""
    _require_manager(actor)
    reason = ResolutionReason.objects.select_for_update().filter(pk=resolution_id).first()
    if reason is None:
        raise NotFound("No such resolution reason.", resolution_id=resolution_id)
    type_ids = list(reason.query_types.values_list("pk", flat=True))
    current = resolution_dict(reason, type_ids)["etag"]
    if etag != current:
        raise _stale("resolution reason", current, resolution_id=reason.pk)
    if name is not None:
        reason.name = _name(name, limit=REASON_NAME_MAX)
        _reason_name_free(reason.name, except_id=reason.pk)
    if position is not None:
        reason.position = _order(position, "position")
    if active is not None:
        reason.active = active
    if query_type_ids is not None:
        type_ids = [t.pk for t in _active_types(query_type_ids)]
        reason.query_types.set(type_ids)
    reason.save()
    return resolution_dict(reason, type_ids)


# --- operators ------------------------------------------------------------------------------
def operator_dict(*, user_id: int) -> dict[str, Any]:
    for operator in _operators():
        if operator["id"] == user_id:
            return {
                **operator,
                "etag": _operator_etag(operator["capacity"], operator["query_type_ids"]),
            }
    raise NotFound(f"No operator with id {user_id}.", operator_id=user_id)


def operator_skills_set(
    *,
    actor: AbstractBaseUser,
    user_id: int,
    etag: str,
    query_type_ids: Sequence[int] | None = None,
    capacity: int | None = None,
) -> dict[str, Any]:
    """Set the types an operator serves (empty: every type) and/or their capacity, through
    ``routing.services.operator_profile_set`` (which pulls waiting conversations they can
    now take).  ``etag`` is the profile the editor loaded.

    Errors: PermissionDenied; NotFound (operator, or ``query_type_ids``); ValidationFailed
    (``capacity``); Conflict ``stale_version``."""
    _require_manager(actor)
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.has_perm(PERM_HANDLE):
        raise NotFound(f"No operator with id {user_id}.", operator_id=user_id)
    with transaction.atomic():
        state, _ = OperatorState.objects.get_or_create(user_id=user_id)
        state = OperatorState.objects.select_for_update().get(pk=state.pk)
        current = _operator_etag(
            state.capacity, list(state.query_types.values_list("pk", flat=True))
        )
        if etag != current:
            raise _stale("operator's profile", current, operator_id=user_id)
        codes = None
        if query_type_ids is not None:
            codes = [t.code for t in _active_types(query_type_ids)]
        operator_profile_set(
            actor=actor, user_id=user_id, query_type_codes=codes, capacity=capacity
        )
    return operator_dict(user_id=user_id)


# --- the type menu ---------------------------------------------------------------------------
@transaction.atomic
def routing_menu_set(
    *,
    actor: AbstractBaseUser,
    version: int,
    type_menu_enabled: bool | None = None,
    type_menu_intro: str | None = None,
) -> dict[str, Any]:
    """Turn the type menu on or off and word its question.  Customers whose type no entry
    point gives are asked to choose, by number, name or keyword.  Errors: PermissionDenied;
    ValidationFailed (``type_menu_intro``); Conflict ``stale_version``."""
    _require_manager(actor)
    routing_settings_get()
    row = RoutingSettings.objects.select_for_update().get(pk=1)
    if row.version != version:
        raise Conflict(
            "Someone else saved the routing settings after you loaded them. Reload them.",
            code=ErrorCode.STALE_VERSION,
            version=row.version,
        )
    if type_menu_intro is not None:
        intro = " ".join(type_menu_intro.split())
        if not intro:
            raise ValidationFailed("The menu's question may not be empty.", field="type_menu_intro")
        if len(intro) > INTRO_MAX:
            raise ValidationFailed(
                f"The menu's question is longer than {INTRO_MAX} characters.",
                field="type_menu_intro",
            )
        row.type_menu_intro = intro
    if type_menu_enabled is not None:
        row.type_menu_enabled = type_menu_enabled
    row.version += 1
    row.save(update_fields=["type_menu_intro", "type_menu_enabled", "version"])
    return routing_menu_dict(row)
