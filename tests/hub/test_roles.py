"""hub.roles: every permission a role is given exists (a typo or a missing model fails here,
not silently in production)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from hub.roles import ROLE_PERMISSIONS, Role, role_groups_ensure

pytestmark = pytest.mark.django_db


def test_every_role_permission_exists_and_is_granted():
    groups = role_groups_ensure()
    for role, perms in ROLE_PERMISSIONS.items():
        granted = {
            f"{app}.{code}"
            for app, code in groups[role].permissions.values_list(
                "content_type__app_label", "codename"
            )
        }
        for dotted in perms:
            app_label, codename = dotted.split(".")
            assert Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).exists(), f"{dotted} (role {role}) is declared by no model"
            assert dotted in granted


def test_operators_hold_only_the_handle_permission():
    assert ROLE_PERMISSIONS[Role.OPERATOR] == ["chat.handle_conversation"]
