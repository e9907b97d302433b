"""hub.staff and its REST API (/api/staff/…): users and roles (seed 004), scheduled
absences, the operators a derivation starts from, the audit chain check, the staff
navigation.

Who may do what: an admin everything; a coordinator nothing until an admin grants them user
management, and then customer-service users only; an operator nothing.  Every change and
every refusal is in the audit log; nothing is half-written.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import RequestFactory
from django.utils import timezone

from backoffice_bridge.audit import audit_chain_verify
from backoffice_bridge.models import AuditEntry
from chat import services as chat_services
from hub import staff as svc
from hub.context_processors import staff_nav_links
from hub.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from hub.roles import Role, role_of
from routing.models import OperatorState, QueryType, ScheduledAbsence

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-42"
USERS = "/api/staff/users/"


def call(client, method, url, body=None):
    kwargs = {"content_type": "application/json"}
    if body is not None:
        kwargs["data"] = json.dumps(body)
    return getattr(client, method)(url, **kwargs)


def login(client, user):
    client.force_login(user)
    return client


def actions(outcome="ok"):
    return list(
        AuditEntry.objects.filter(action__startswith="staff.", outcome=outcome)
        .order_by("sequence")
        .values_list("action", flat=True)
    )


@pytest.fixture
def types(db):
    QueryType.objects.create(code="payments", name="Payments", menu_position=1)
    QueryType.objects.create(code="claims", name="Claims", menu_position=2)
    return ["payments", "claims"]


@pytest.fixture
def people(staff):
    return {
        "admin": staff("ada", Role.ADMIN),
        "coord": staff("carla", Role.COORDINATOR),
        "op": staff("omar", Role.OPERATOR),
    }


def grant(admin, coordinator):
    return svc.staff_user_update(actor=admin, user_id=coordinator.pk, can_manage_users=True)


def fresh(user):
    return get_user_model().objects.get(pk=user.pk)


# --- who may manage users ----------------------------------------------------------------
def test_admin_creates_an_operator_who_can_sign_in(client, people, types):
    login(client, people["admin"])
    response = call(
        client,
        "post",
        USERS,
        {
            "username": "nora",
            "password": PASSWORD,
            "role": "Operator",
            "first_name": "Nora",
            "last_name": "New",
            "email": "nora@bank.example",
            "query_types": ["claims"],
            "capacity": 3,
        },
    )
    assert response.status_code == 201, response.content
    user = response.json()["user"]
    assert (user["name"], user["role"], user["query_types"], user["capacity"]) == (
        "Nora New",
        "Operator",
        ["claims"],
        3,
    )
    assert user["is_active"] and not user["can_manage_users"]
    nora = get_user_model().objects.get(username="nora")
    assert role_of(nora) == Role.OPERATOR and not nora.is_staff
    state = OperatorState.objects.get(user=nora)
    assert (state.capacity, [t.code for t in state.query_types.all()]) == (3, ["claims"])
    client.logout()
    assert client.login(username="nora", password=PASSWORD)
    (entry,) = AuditEntry.objects.filter(action="staff.user_created")
    assert entry.actor_id == people["admin"].pk and entry.actor_role == "Admin"
    assert entry.object_type == "user" and entry.object_id == str(nora.pk)
    assert entry.after["username"] == "nora" and entry.after["role"] == "Operator"
    assert "password" not in json.dumps(entry.after)
    assert audit_chain_verify().ok


def test_admin_lists_everyone_with_every_role(client, people):
    body = login(client, people["admin"]).get(USERS).json()
    assert {u["username"] for u in body["users"]} == {"ada", "carla", "omar"}
    assert {"Admin", "Coordinator", "Operator", "Contact center"} <= set(body["roles"])
    assert body["can"] == {"grant": True, "all_roles": True}
    ada = next(u for u in body["users"] if u["username"] == "ada")
    assert ada["is_self"] and ada["can_manage_users"]


@pytest.mark.parametrize("who", ["coord", "op"])
def test_plain_coordinators_and_operators_manage_nobody(client, people, who):
    login(client, people[who])
    assert client.get(USERS).status_code == 403
    response = call(
        client, "post", USERS, {"username": "x", "password": PASSWORD, "role": "Operator"}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    page = client.get("/staff/users/")
    assert page.status_code == 403 and b"No access to users and roles" in page.content
    assert not get_user_model().objects.filter(username="x").exists()
    assert actions("refused") == ["staff.user_create"]


def test_the_coordinator_group_does_not_hold_user_management(people):
    coordinator = Group.objects.get(name=Role.COORDINATOR.value)
    assert not coordinator.permissions.filter(codename="manage_staff_users").exists()
    assert not people["coord"].has_perm("hub.manage_staff_users")


def test_a_granted_coordinator_stays_a_coordinator_and_manages_customer_service_only(
    client, people, staff
):
    admin, coord = people["admin"], people["coord"]
    granted = grant(admin, coord)
    assert granted["can_manage_users_granted"] and granted["role"] == "Coordinator"
    coord = fresh(coord)
    assert role_of(coord) == Role.COORDINATOR  # not promoted by the grant
    assert actions()[-1] == "staff.user_updated"
    second = staff("cody", Role.COORDINATOR)
    login(client, coord)
    body = client.get(USERS).json()
    # Only customer-service users: not the admin, not coordinators (themselves included).
    assert {u["username"] for u in body["users"]} == {"omar"}
    assert body["roles"] == ["Operator", "Contact center"]
    assert body["can"] == {"grant": False, "all_roles": False}
    made = call(
        client, "post", USERS, {"username": "cc1", "password": PASSWORD, "role": "Contact center"}
    )
    assert made.status_code == 201 and made.json()["user"]["role"] == "Contact center"
    # Never an admin or a coordinator, never a grant.
    for role in ("Admin", "Coordinator"):
        refused = call(
            client, "post", USERS, {"username": "boss", "password": PASSWORD, "role": role}
        )
        assert refused.status_code == 403
        assert refused.json()["data"]["field"] == "role"
    refused = call(
        client,
        "post",
        USERS,
        {"username": "boss", "password": PASSWORD, "role": "Operator", "can_manage_users": True},
    )
    assert refused.status_code == 403 and refused.json()["data"]["field"] == "can_manage_users"
    # Never edit an admin, another coordinator or themselves; never promote an operator.
    for target in (admin, second, coord):
        response = call(client, "patch", f"{USERS}{target.pk}/", {"first_name": "Hacked"})
        assert response.status_code == 403, target.username
        assert call(client, "delete", f"{USERS}{target.pk}/").status_code == 403
        assert (
            call(
                client, "post", f"{USERS}{target.pk}/password/", {"password": PASSWORD}
            ).status_code
            == 403
        )
    assert fresh(admin).first_name == "" and fresh(second).first_name == ""
    op = people["op"]
    promote = call(client, "patch", f"{USERS}{op.pk}/", {"role": "Coordinator"})
    assert promote.status_code == 403 and promote.json()["data"]["field"] == "role"
    self_grant = call(client, "patch", f"{USERS}{coord.pk}/", {"can_manage_users": True})
    assert self_grant.status_code == 403
    # What they may do to an operator works.
    edited = call(client, "patch", f"{USERS}{op.pk}/", {"first_name": "Omar", "capacity": 2})
    assert edited.status_code == 200 and edited.json()["user"]["capacity"] == 2
    assert not get_user_model().objects.filter(username="boss").exists()
    assert role_of(fresh(op)) == Role.OPERATOR


def test_revoking_the_grant_and_changing_role_drop_it(people):
    admin, coord = people["admin"], people["coord"]
    grant(admin, coord)
    svc.staff_user_update(actor=admin, user_id=coord.pk, can_manage_users=False)
    assert not fresh(coord).has_perm("hub.manage_staff_users")
    grant(admin, coord)
    svc.staff_user_update(actor=admin, user_id=coord.pk, role="Operator")
    coord = fresh(coord)
    assert role_of(coord) == Role.OPERATOR and not coord.has_perm("hub.manage_staff_users")
    assert not coord.is_staff
    with pytest.raises(ValidationFailed) as error:
        svc.staff_user_update(actor=admin, user_id=coord.pk, can_manage_users=True)
    assert error.value.data["field"] == "can_manage_users"


# --- self, the last admin, conversations ------------------------------------------------
def test_nobody_locks_themselves_out(people):
    admin = people["admin"]
    for change, field in (({"is_active": False}, "is_active"), ({"role": "Coordinator"}, "role")):
        with pytest.raises(Conflict) as error:
            svc.staff_user_update(actor=admin, user_id=admin.pk, **change)
        assert (error.value.data["reason"], error.value.data["field"]) == ("self", field)
    with pytest.raises(Conflict) as error:
        svc.staff_user_delete(actor=admin, user_id=admin.pk)
    assert error.value.data["reason"] == "self"
    admin = fresh(admin)
    assert admin.is_active and role_of(admin) == Role.ADMIN
    # Their own name and password they may change.
    svc.staff_user_update(actor=admin, user_id=admin.pk, first_name="Ada")
    assert fresh(admin).first_name == "Ada"


def test_the_last_active_admin_stays(people, staff):
    admin = people["admin"]
    # Someone with admin rights through a custom group (not the Admin role) is not an admin
    # the hub can count on: the last Admin stays.
    it = staff("ivan", Role.OPERATOR)
    group = Group.objects.create(name="IT")
    group.permissions.set(
        Permission.objects.filter(codename__in=["manage_staff_users", "batch_derive"])
    )
    it.groups.add(group)
    it = fresh(it)
    assert role_of(it) == Role.ADMIN
    for change in ({"is_active": False}, {"role": "Operator"}):
        with pytest.raises(Conflict) as error:
            svc.staff_user_update(actor=it, user_id=admin.pk, **change)
        assert error.value.data["reason"] == "last_admin"
    with pytest.raises(Conflict) as error:
        svc.staff_user_delete(actor=it, user_id=admin.pk)
    assert error.value.data["reason"] == "last_admin"
    # With a second admin, one may go.
    second = staff("alan", Role.ADMIN)
    svc.staff_user_update(actor=it, user_id=admin.pk, is_active=False)
    assert not fresh(admin).is_active
    with pytest.raises(Conflict):
        svc.staff_user_update(actor=it, user_id=second.pk, role="Coordinator")
    assert actions()[-1] == "staff.user_deactivated"
    assert actions("refused").count("staff.user_update") >= 3


def test_users_with_open_conversations_are_derived_first(client, people, staff):
    admin = people["admin"]
    op = staff("olga", Role.OPERATOR, online=True)
    received = chat_services.webchat_message_receive(visitor_id="v1", client_id="1", text="hi")
    assert received.conversation["operator_id"] == op.pk
    login(client, admin)
    for method, body in (("patch", {"is_active": False}), ("delete", None)):
        response = call(client, method, f"{USERS}{op.pk}/", body)
        assert response.status_code == 409
        error = response.json()
        assert error["data"]["reason"] == "owns_conversations"
        assert error["data"]["open_conversations"] == 1
        assert "derive them" in error["message"]
    assert fresh(op).is_active


def test_users_with_history_are_deactivated_not_deleted(client, people, staff):
    admin = people["admin"]
    op = staff("olga", Role.OPERATOR, online=True)
    received = chat_services.webchat_message_receive(visitor_id="v1", client_id="1", text="hi")
    chat_services.conversation_close(actor=op, conversation_id=received.conversation["id"])
    token = call(client, "post", "/api/auth/token/", {"username": "olga", "password": "pw-olga"})
    raw = token.json()["token"]
    login(client, admin)
    response = call(client, "delete", f"{USERS}{op.pk}/")
    assert response.status_code == 409
    assert response.json()["data"]["reason"] == "has_history"
    assert "Deactivate the account instead" in response.json()["message"]
    assert get_user_model().objects.filter(pk=op.pk).exists()
    response = call(client, "patch", f"{USERS}{op.pk}/", {"is_active": False})
    assert response.status_code == 200
    row = response.json()["user"]
    assert not row["is_active"] and row["presence"] == "offline"
    client.logout()
    assert not client.login(username="olga", password="pw-olga")
    bearer = client.get("/api/conversations/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert bearer.status_code == 401  # tokens revoked
    login(client, admin)
    back = call(client, "patch", f"{USERS}{op.pk}/", {"is_active": True, "capacity": 4})
    assert back.status_code == 200 and back.json()["user"]["capacity"] == 4
    assert actions()[-2:] == ["staff.user_deactivated", "staff.user_reactivated"]


def test_a_user_without_history_is_deleted_and_audited(client, people, staff):
    gone = staff("temp", Role.OPERATOR)
    login(client, people["admin"])
    response = call(client, "delete", f"{USERS}{gone.pk}/")
    assert response.status_code == 200 and response.json() == {"id": gone.pk, "deleted": True}
    assert not get_user_model().objects.filter(pk=gone.pk).exists()
    (entry,) = AuditEntry.objects.filter(action="staff.user_deleted")
    assert entry.before["username"] == "temp" and entry.object_id == str(gone.pk)
    assert call(client, "delete", f"{USERS}{gone.pk}/").status_code == 404


def test_password_reset(client, people):
    op = people["op"]
    login(client, people["admin"])
    weak = call(client, "post", f"{USERS}{op.pk}/password/", {"password": "abc12"})
    assert weak.status_code == 400 and weak.json()["data"]["field"] == "password"
    ok = call(client, "post", f"{USERS}{op.pk}/password/", {"password": PASSWORD})
    assert ok.status_code == 200
    client.logout()
    assert client.login(username="omar", password=PASSWORD)
    refused, done = AuditEntry.objects.filter(action="staff.user_password_reset").order_by(
        "sequence"
    )
    assert (refused.outcome, done.outcome) == ("refused", "ok")
    assert refused.after["error"]["data"]["field"] == "password"
    assert "abc12" not in json.dumps(refused.after) and PASSWORD not in json.dumps(done.after)


def test_the_user_list_costs_a_fixed_number_of_queries(people, staff):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            svc.staff_users_list(actor=fresh(people["admin"]))
        return len(queries)

    few = cost()
    for n in range(4):
        staff(f"extra{n}", Role.OPERATOR)
    assert cost() == few


# --- bad input --------------------------------------------------------------------------
NEW = {"username": "n", "password": PASSWORD, "role": "Operator"}


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"username": None}, 400, "missing_field", "username"),
        ({"password": None}, 400, "missing_field", "password"),
        ({"role": None}, 400, "missing_field", "role"),
        ({"role": "Boss"}, 400, "invalid_value", "role"),
        ({"username": "two words"}, 400, "invalid_value", "username"),
        ({"username": "OMAR"}, 409, "conflict", "username"),
        ({"email": "nope"}, 400, "invalid_value", "email"),
        ({"password": "1234"}, 400, "invalid_value", "password"),
        ({"capacity": 500}, 400, "invalid_value", "capacity"),
        ({"capacity": "5"}, 400, "wrong_type", "capacity"),
        ({"query_types": [1]}, 400, "wrong_type", "query_types"),
        ({"query_types": ["nope"]}, 404, "not_found", "query_types"),
        ({"can_manage_users": True}, 400, "invalid_value", "can_manage_users"),
    ],
)
def test_create_refusals_are_precise_and_write_nothing(
    client, people, types, change, status, code, field
):
    body = {key: value for key, value in {**NEW, **change}.items() if value is not None}
    login(client, people["admin"])
    response = call(client, "post", USERS, body)
    assert response.status_code == status, response.content
    error = response.json()
    assert (error["code"], error["data"]["field"]) == (code, field)
    assert not get_user_model().objects.filter(username__in=["n", "two words"]).exists()
    assert "staff.user_created" not in actions()


def test_malformed_bodies_and_unknown_users(client, people):
    login(client, people["admin"])
    response = client.post(USERS, data="{nope", content_type="application/json")
    assert response.json()["code"] == "invalid_json"
    response = call(client, "patch", f"{USERS}999999/", {"first_name": "x"})
    assert response.status_code == 404 and response.json()["data"]["field"] == "user_id"
    assert client.put(USERS).status_code == 405
    client.logout()
    assert client.get(USERS).status_code == 401


def test_a_deactivated_user_keeps_their_skills_until_reactivated(people, types):
    admin, op = people["admin"], people["op"]
    svc.staff_user_update(actor=admin, user_id=op.pk, is_active=False)
    with pytest.raises(ValidationFailed) as error:
        svc.staff_user_update(actor=admin, user_id=op.pk, capacity=2)
    assert error.value.data["field"] == "capacity"
    row = svc.staff_user_update(
        actor=admin, user_id=op.pk, is_active=True, query_type_codes=["payments"]
    )
    assert row["is_active"] and row["query_types"] == ["payments"]


# --- derivations and absences ------------------------------------------------------------
def test_derivation_operators_and_their_conversations(client, people, staff):
    olga = staff("olga", Role.OPERATOR, online=True)
    received = chat_services.webchat_message_receive(
        visitor_id="v1", client_id="1", text="hi", display_name="Ana"
    )
    login(client, people["admin"])
    operators = client.get("/api/staff/operators/").json()["operators"]
    row = next(o for o in operators if o["id"] == olga.pk)
    assert (row["presence"], row["load"], row["absent_now"]) == ("online", 1, False)
    listing = client.get(f"/api/staff/operators/{olga.pk}/conversations/").json()
    assert [c["id"] for c in listing["conversations"]] == [received.conversation["id"]]
    assert listing["conversations"][0]["customer"]["name"] == "Ana"
    assert listing["total"] == 1
    assert client.get("/api/staff/operators/999999/conversations/").status_code == 404
    login(client, people["coord"])
    assert client.get("/api/staff/operators/").status_code == 403
    assert client.get("/staff/derivations/").status_code == 403


def test_absences_are_planned_listed_and_cancelled(client, people, staff):
    admin, op = people["admin"], people["op"]
    other = staff("olga", Role.OPERATOR)
    login(client, admin)
    now = timezone.now()
    body = {
        "operator_id": op.pk,
        "starts_at": (now + timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=2)).isoformat(),
        "to_operator_id": other.pk,
        "reason": "Holiday",
    }
    made = call(client, "post", "/api/staff/absences/", body)
    assert made.status_code == 201, made.content
    absence = made.json()["absence"]
    assert absence["status"] == "scheduled" and absence["reason"] == "Holiday"
    assert absence["to_operator"]["id"] == other.pk
    overlap = call(client, "post", "/api/staff/absences/", body)
    assert overlap.status_code == 409 and overlap.json()["data"]["absence_id"] == absence["id"]
    listed = client.get("/api/staff/absences/").json()["absences"]
    assert [(a["id"], a["reason"]) for a in listed] == [(absence["id"], "Holiday")]
    gone = call(client, "delete", f"/api/staff/absences/{absence['id']}/")
    assert gone.status_code == 200 and gone.json()["absence"]["status"] == "cancelled"
    assert not ScheduledAbsence.objects.exists()
    # A running absence ends now instead.
    running = svc.scheduled_absence_create(
        actor=admin,
        operator_id=op.pk,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=3),
    )
    assert running["status"] == "active"
    ended = svc.scheduled_absence_cancel(actor=admin, absence_id=running["id"])
    assert ended["status"] == "ended"
    assert ScheduledAbsence.objects.get(pk=running["id"]).ends_at <= timezone.now()
    with pytest.raises(Conflict):
        svc.scheduled_absence_cancel(actor=admin, absence_id=running["id"])
    assert actions() == [
        "staff.absence_created",
        "staff.absence_cancelled",
        "staff.absence_created",
        "staff.absence_cancelled",
    ]


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"ends_at": "yesterday"}, 400, "ends_at"),
        ({"starts_at": "2026-01-02T10:00:00"}, 400, "starts_at"),  # no offset
        (
            {"ends_at": "2020-01-01T10:00:00+00:00", "starts_at": "2019-01-01T10:00:00+00:00"},
            400,
            "ends_at",
        ),
        ({"to_operator_id": "me"}, 400, "to_operator_id"),
        ({"operator_id": 999999}, 404, "operator_id"),
        ({"reason": "x" * 201}, 400, "reason"),
    ],
)
def test_absence_refusals_are_precise(client, people, change, status, field):
    now = timezone.now()
    body = {
        "operator_id": people["op"].pk,
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        **change,
    }
    response = call(login(client, people["admin"]), "post", "/api/staff/absences/", body)
    assert response.status_code == status, response.content
    assert response.json()["data"]["field"] == field
    assert not ScheduledAbsence.objects.exists()


def test_absences_are_for_admins(people):
    now = timezone.now()
    with pytest.raises(PermissionDenied):
        svc.scheduled_absence_create(
            actor=people["coord"],
            operator_id=people["op"].pk,
            starts_at=now,
            ends_at=now + timedelta(hours=1),
        )
    with pytest.raises(NotFound):
        svc.scheduled_absence_cancel(actor=people["admin"], absence_id=12345)


# --- the audit log --------------------------------------------------------------------------
def test_audit_verify_and_outcome_filter(client, people):
    admin, coord = people["admin"], people["coord"]
    svc.staff_user_update(actor=admin, user_id=people["op"].pk, first_name="Omar")
    with pytest.raises(PermissionDenied):
        svc.staff_users_list(actor=coord)  # a read: not audited
    with pytest.raises(PermissionDenied):
        svc.staff_user_create(actor=coord, username="x", password=PASSWORD, role="Operator")
    login(client, admin)
    report = client.get("/api/audit/verify/").json()
    assert report["ok"] and report["checked"] == AuditEntry.objects.count() == 2
    (refused,) = client.get("/api/audit/?outcome=refused").json()["entries"]
    assert refused["action"] == "staff.user_create" and refused["actor_id"] == coord.pk
    assert refused["after"]["error"]["code"] == "permission_denied"
    ok = client.get("/api/audit/?outcome=ok").json()["entries"]
    assert [e["action"] for e in ok] == ["staff.user_updated"]
    bad = client.get("/api/audit/?outcome=maybe")
    assert bad.status_code == 400 and bad.json()["data"]["field"] == "outcome"
    csv = client.get("/api/audit/export.csv?outcome=ok")
    lines = b"".join(csv.streaming_content).decode().strip().splitlines()
    assert len(lines) == 2 and "staff.user_updated" in lines[1]
    choices = client.get("/api/staff/audit/choices/").json()
    assert "staff.user_updated" in choices["actions"]
    assert {"ada", "carla", "omar"} <= {a["username"] for a in choices["actors"]}
    login(client, coord)
    assert client.get("/api/audit/verify/").status_code == 403
    assert client.get("/staff/audit/").status_code == 403


# --- navigation ------------------------------------------------------------------------------
def test_staff_navigation_follows_permissions(people):
    factory = RequestFactory()

    def keys(user, path="/staff/users/"):
        request = factory.get(path)
        request.user = fresh(user)
        return [link["key"] for link in staff_nav_links(request)]

    admin_keys = keys(people["admin"])
    assert {"console", "hours", "users", "derivations", "audit", "dashboard"} <= set(admin_keys)
    coord_keys = keys(people["coord"])
    assert "console" in coord_keys and "hours" in coord_keys
    assert not {"users", "derivations", "audit"} & set(coord_keys)
    grant(people["admin"], people["coord"])
    assert "users" in keys(people["coord"])
    assert keys(people["op"]) == ["console"]
    request = factory.get("/staff/users/")
    request.user = fresh(people["admin"])
    (current,) = [link for link in staff_nav_links(request) if link["current"]]
    assert current["key"] == "users"


def test_pages_render_for_their_holders(client, people):
    login(client, people["admin"])
    for url, marker in (
        ("/staff/users/", b'id="users-main"'),
        ("/staff/derivations/", b'id="derive-main"'),
        ("/staff/audit/", b'id="audit-main"'),
    ):
        page = client.get(url)
        assert page.status_code == 200 and marker in page.content
        assert b'aria-current="page"' in page.content
