"""The Django admin serves record editing by role: coordinators edit routing, knowledge base
and hours records; scheduled absences are admins'; operators never get in."""

from __future__ import annotations

import pytest

from hub.roles import Role

pytestmark = pytest.mark.django_db

PAGES = {
    "query types": "/admin/routing/querytype/",
    "skills": "/admin/routing/operatorstate/",
    "replies": "/admin/knowledge_base/reply/",
    "hours": "/admin/scheduling/schedule/",
    "absences": "/admin/routing/scheduledabsence/",
    "assignments (read-only audit)": "/admin/routing/assignment/",
}


def _statuses(client, user) -> dict[str, int]:
    client.force_login(user)
    return {name: client.get(url).status_code for name, url in PAGES.items()}


def test_coordinator_edits_routing_kb_and_hours_but_not_absences(client, staff):
    statuses = _statuses(client, staff("coord", Role.COORDINATOR))
    assert statuses.pop("absences") == 403
    assert set(statuses.values()) == {200}


def test_admin_reaches_every_page(client, staff):
    assert set(_statuses(client, staff("boss", Role.ADMIN)).values()) == {200}


def test_operator_is_sent_to_the_admin_login(client, staff):
    assert set(_statuses(client, staff("op", Role.OPERATOR)).values()) == {302}
