"""Roles: Admin, Coordinator and Operator are Django groups holding permissions.

Code asks for permissions (``user.has_perm``), never for group names, so a bank can give a
custom group any mix.  ``role_groups_ensure`` is idempotent and runs after every migrate.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.db import connection

logger = logging.getLogger(__name__)


class Role(StrEnum):
    ADMIN = "Admin"
    COORDINATOR = "Coordinator"
    OPERATOR = "Operator"
    # An operator who may also link bank users and start back-office actions (seed 000).
    CONTACT_CENTER = "Contact center"
    # Payment operations (seed 002, docs/backoffice.md "Payment cases"): back-office agents
    # who work the tasks of payment inquiry and claim cases; connectors only for the bank
    # accounts they manage; the payment admin configures the assignment rules.
    INQUIRY_AGENT = "Inquiry agent"
    INQUIRY_AGENT_CONNECTOR = "Inquiry agent connector"
    CLAIM_AGENT = "Claim agent"
    CLAIM_AGENT_CONNECTOR = "Claim agent connector"
    PAYMENT_ADMIN = "Payment admin"
    # Not staff (role_of is None for them): an outsider with fixed read-only rights while an
    # admin lets them in (seed 003, hub/advisors.py).
    ADVISOR = "External advisor"


# app_label.codename of the permissions each role holds.
PERM_HANDLE = "chat.handle_conversation"  # answer the conversations assigned to you
PERM_SUPERVISE = "chat.supervise_conversations"  # watch every conversation live
PERM_MANAGE_USERS = "hub.manage_staff_users"
PERM_VIEW_DASHBOARD = "hub.view_dashboard"  # the analytics dashboard (seed 002)
PERM_DERIVE = "routing.derive_conversations"  # transfer one conversation to another operator
PERM_BATCH_DERIVE = "routing.batch_derive"  # move all of an operator's conversations at once
PERM_FORCE_DERIVATION = "routing.force_derivation"  # transfer beyond the target's capacity
PERM_MANAGE_ROUTING = "routing.manage_routing"  # query types, reasons, routing settings
PERM_MANAGE_KB = "knowledge_base.manage_replies"  # write, retire and reorder default replies
PERM_MANAGE_HOURS = "scheduling.manage_hours"  # opening hours, special days, autoreplies
PERM_MANAGE_HSM = "hsm.manage_templates"  # write, submit, approve and retire HSM templates
# Back-office bridge (docs/backoffice.md): makers link bank users and start actions;
# checkers pick up, approve and reject them (never their own).  Checkers are supervisors,
# who see the requests arrive live on the supervisors' stream.
PERM_START_ACTIONS = "backoffice_bridge.start_actions"
PERM_APPROVE_ACTIONS = "backoffice_bridge.approve_actions"
# Seed 001: acting on behalf of a consenting customer (dispute, stop a cheque) is for the
# contact center's representatives and administrators; admins read the audit log.
PERM_ACT_ON_BEHALF = "backoffice_bridge.act_on_behalf"
PERM_READ_AUDIT = "backoffice_bridge.read_audit_log"
# External advisors (seed 003, hub/advisors.py): admins show the access code and assign or
# remove advisors; advisors read conversations, cases and reports while their access lasts.
PERM_MANAGE_ADVISORS = "hub.manage_advisors"
PERM_ADVISOR_READ = "hub.advisor_read"
PERM_VIEW_ALL_CASES = "backoffice_bridge.view_all_cases"
# Seed 002: payment contributors open cases; agents work their tasks (claim agents also
# approve debits, never for a case they opened or worked on); connectors are restricted to
# the accounts they manage (a restriction carried as a permission, so a custom group can
# hold it); payment admins configure the routing rules and connectors' accounts.
PERM_OPEN_CASES = "backoffice_bridge.open_cases"
PERM_WORK_INQUIRY_TASKS = "backoffice_bridge.work_inquiry_tasks"
PERM_WORK_CLAIM_TASKS = "backoffice_bridge.work_claim_tasks"
PERM_APPROVE_DEBITS = "backoffice_bridge.approve_debits"
PERM_MANAGED_ACCOUNTS_ONLY = "backoffice_bridge.work_managed_accounts_only"
PERM_MANAGE_CASE_RULES = "backoffice_bridge.manage_case_rules"

ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.OPERATOR: [PERM_HANDLE],
    # Read-only, fixed (neither the bank nor the advisor changes them); never an action.
    Role.ADVISOR: [PERM_ADVISOR_READ, PERM_VIEW_DASHBOARD, PERM_VIEW_ALL_CASES],
    Role.CONTACT_CENTER: [PERM_HANDLE, PERM_START_ACTIONS, PERM_ACT_ON_BEHALF, PERM_OPEN_CASES],
    Role.INQUIRY_AGENT: [PERM_WORK_INQUIRY_TASKS],
    Role.INQUIRY_AGENT_CONNECTOR: [PERM_WORK_INQUIRY_TASKS, PERM_MANAGED_ACCOUNTS_ONLY],
    Role.CLAIM_AGENT: [PERM_WORK_CLAIM_TASKS, PERM_APPROVE_DEBITS],
    Role.CLAIM_AGENT_CONNECTOR: [
        PERM_WORK_CLAIM_TASKS,
        PERM_APPROVE_DEBITS,
        PERM_MANAGED_ACCOUNTS_ONLY,
    ],
    Role.PAYMENT_ADMIN: [PERM_MANAGE_CASE_RULES, PERM_VIEW_ALL_CASES],
    Role.COORDINATOR: [
        PERM_HANDLE,
        PERM_SUPERVISE,
        PERM_DERIVE,
        PERM_MANAGE_ROUTING,
        PERM_MANAGE_KB,
        PERM_MANAGE_HOURS,
        PERM_MANAGE_HSM,
        PERM_START_ACTIONS,
        PERM_APPROVE_ACTIONS,
        PERM_VIEW_DASHBOARD,
        PERM_OPEN_CASES,
    ],
    Role.ADMIN: [
        PERM_HANDLE,
        PERM_SUPERVISE,
        PERM_MANAGE_USERS,
        PERM_DERIVE,
        PERM_MANAGE_ROUTING,
        PERM_MANAGE_KB,
        PERM_MANAGE_HOURS,
        PERM_MANAGE_HSM,
        PERM_BATCH_DERIVE,
        PERM_FORCE_DERIVATION,
        PERM_START_ACTIONS,
        PERM_APPROVE_ACTIONS,
        PERM_ACT_ON_BEHALF,
        PERM_READ_AUDIT,
        PERM_VIEW_DASHBOARD,
        PERM_MANAGE_ADVISORS,
        PERM_OPEN_CASES,
        PERM_MANAGE_CASE_RULES,
        PERM_VIEW_ALL_CASES,
    ],
}


def role_groups_ensure() -> dict[Role, Group]:
    """Create the role groups and (re)attach their permissions."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions

    # post_migrate runs app by app; make sure the permissions we attach already exist.
    for label in {dotted.split(".")[0] for perms in ROLE_PERMISSIONS.values() for dotted in perms}:
        create_permissions(apps.get_app_config(label), verbosity=0)
    groups: dict[Role, Group] = {}
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is None:
                # Declared by a model not migrated yet (an app being built); the role gets
                # it on the next migrate.  tests/hub checks that every one exists.
                logger.warning("permission %s does not exist yet", dotted)
                continue
            wanted.append(permission)
        group.permissions.add(*wanted)
        groups[role] = group
    return groups


def permissions_preload(user: AbstractBaseUser) -> None:
    """Load a user's permissions in one query into the caches Django's ModelBackend reads.

    ``has_perm`` would otherwise run two ORM queries (user and group permissions) with their
    content types; a console handshake asks for several permissions, and in a reconnect
    storm thousands of handshakes do.  Superusers and inactive users are left to Django.
    """
    if not user.is_active or user.is_superuser:
        return
    user_model = user._meta
    through_groups = user_model.get_field("groups").remote_field.through._meta.db_table
    through_perms = user_model.get_field("user_permissions").remote_field.through._meta.db_table
    group_perms = Group.permissions.through._meta.db_table
    permission = Permission._meta.db_table
    content_type = Permission._meta.get_field("content_type").related_model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 'g', ct.app_label, p.codename FROM {through_groups} ug "
            f"JOIN {group_perms} gp ON gp.group_id = ug.group_id "
            f"JOIN {permission} p ON p.id = gp.permission_id "
            f"JOIN {content_type} ct ON ct.id = p.content_type_id WHERE ug.user_id = %s "
            f"UNION SELECT 'u', ct.app_label, p.codename FROM {through_perms} up "
            f"JOIN {permission} p ON p.id = up.permission_id "
            f"JOIN {content_type} ct ON ct.id = p.content_type_id WHERE up.user_id = %s",
            [user.pk, user.pk],
        )
        rows = cursor.fetchall()
    group = {f"{app}.{code}" for kind, app, code in rows if kind == "g"}
    own = {f"{app}.{code}" for kind, app, code in rows if kind == "u"}
    user._group_perm_cache = group  # type: ignore[attr-defined]
    user._user_perm_cache = own  # type: ignore[attr-defined]
    user._perm_cache = group | own  # type: ignore[attr-defined]


def role_of(user: AbstractBaseUser | AnonymousUser) -> Role | None:
    """The highest role a user holds (for display and the console's capabilities)."""
    if not getattr(user, "is_authenticated", False):
        return None
    # Batch derivation is the admins' own tool (seed 004); managing users is not, since a
    # coordinator may be granted it and stays a coordinator.
    if user.has_perm(PERM_BATCH_DERIVE):
        return Role.ADMIN
    if user.has_perm(PERM_SUPERVISE):
        return Role.COORDINATOR
    if user.has_perm(PERM_HANDLE):
        return Role.OPERATOR
    return None


def can_supervise(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.has_perm(PERM_SUPERVISE))


def is_staff_member(user: AbstractBaseUser | AnonymousUser) -> bool:
    return role_of(user) is not None
