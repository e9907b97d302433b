"""External advisors (seed 003, hub/advisors.py): the access code's 60 minutes (valid at
59:59, refused at 60:01, a new one after), joining, leaving, removal, permanent advisors,
the audit of every change, refusal and read, read-only rights (every write refused, no
console socket), and sessions and tokens ending with the access.  Services get ``now``;
HTTP goes through Django's test client with the real middleware chain."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice_bridge.audit import audit_chain_verify
from backoffice_bridge.models import AuditEntry
from chat import services as chat_services
from hub import advisors
from hub.exceptions import Conflict, HubError, NotFound, PermissionDenied, ValidationFailed
from hub.models import AdvisorGrant
from hub.roles import Role

pytestmark = pytest.mark.django_db

PASSWORD = "advisor-pass-1"


def post(client, url, body=None, **headers):
    data = json.dumps(body) if body is not None else ""
    return client.post(url, data=data, content_type="application/json", **headers)


@pytest.fixture
def admin(staff):
    return staff("adm", Role.ADMIN)


@pytest.fixture
def advisor(admin):
    """Factory: an advisor account created by the admin, as the admins' page does."""

    def make(username: str = "ada"):
        created = advisors.advisor_account_create(
            actor=admin, username=username, password=PASSWORD, first_name="Ada", email=""
        )
        from django.contrib.auth import get_user_model

        return get_user_model().objects.get(pk=created["id"])

    return make


@pytest.fixture
def conversation(staff):
    staff("op", online=True)
    received = chat_services.webchat_message_receive(
        visitor_id="visitor-1", client_id="c1", text="My card was stolen"
    )
    return received.conversation


def entries(action: str, **filters) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action, **filters).order_by("sequence"))


def reason(excinfo) -> str | None:
    return excinfo.value.data.get("reason")


# --- the access code ---------------------------------------------------------------------


def test_code_valid_at_59_59_and_refused_at_60_01(admin, advisor):
    t0 = timezone.now()
    first, second = advisor("ada"), advisor("bea")
    code = advisors.advisor_code_current(actor=admin, now=t0)
    assert code["seconds_left"] == 3600 and len(code["code"]) == 9  # ABCD-2345

    access = advisors.advisor_join(
        actor=first, code=code["code"], now=t0 + timedelta(minutes=59, seconds=59)
    )
    assert access["kind"] == "temporary" and access["live"] is True
    assert access["ends_at"] == (t0 + timedelta(minutes=59, seconds=59, hours=8)).isoformat()

    with pytest.raises(ValidationFailed) as expired:
        advisors.advisor_join(
            actor=second, code=code["code"], now=t0 + timedelta(minutes=60, seconds=1)
        )
    assert (expired.value.data["field"], reason(expired)) == ("code", "expired")
    assert not AdvisorGrant.objects.filter(advisor=second).exists()

    joined = entries("advisor.joined")
    assert [(e.actor_id, e.outcome, e.actor_role) for e in joined] == [
        (first.pk, "ok", "External advisor"),
        (second.pk, "refused", "External advisor"),
    ]
    assert joined[1].after["error"]["data"]["reason"] == "expired"
    assert code["code"] not in json.dumps(joined[1].after)  # a tried code is masked


def test_a_new_code_after_sixty_minutes(admin, advisor):
    t0 = timezone.now()
    ada = advisor()
    old = advisors.advisor_code_current(actor=admin, now=t0)
    assert (
        advisors.advisor_code_current(actor=admin, now=t0 + timedelta(minutes=59))["code"]
        == (old["code"])
    )
    later = t0 + timedelta(minutes=60, seconds=1)
    new = advisors.advisor_code_current(actor=admin, now=later)
    assert new["code"] != old["code"] and new["seconds_left"] == 3600
    assert len(entries("advisor.code_generated")) == 2

    with pytest.raises(ValidationFailed) as refused:
        advisors.advisor_join(actor=ada, code=old["code"], now=later)
    assert reason(refused) == "expired"
    # Typed in lower case with a space instead of the dash: still the code.
    typed = new["code"].lower().replace("-", " ")
    assert advisors.advisor_join(actor=ada, code=typed, now=later)["live"] is True


def test_an_admin_rotates_the_code_and_the_old_one_stops_working(admin, advisor, staff):
    t0 = timezone.now()
    ada = advisor()
    old = advisors.advisor_code_current(actor=admin, now=t0)
    new = advisors.advisor_code_rotate(actor=admin, now=t0 + timedelta(minutes=5))
    assert new["code"] != old["code"]
    with pytest.raises(ValidationFailed) as replaced:
        advisors.advisor_join(actor=ada, code=old["code"], now=t0 + timedelta(minutes=6))
    assert reason(replaced) == "replaced"
    advisors.advisor_join(actor=ada, code=new["code"], now=t0 + timedelta(minutes=6))
    rotated = entries("advisor.code_rotated")
    assert [(e.actor_id, e.actor_role, e.outcome) for e in rotated] == [(admin.pk, "Admin", "ok")]

    coordinator = staff("coord", Role.COORDINATOR)
    with pytest.raises(PermissionDenied):
        advisors.advisor_code_rotate(actor=coordinator)
    with pytest.raises(PermissionDenied):
        advisors.advisor_code_current(actor=coordinator)
    assert entries("advisor.code_rotated", outcome="refused")[0].actor_id == coordinator.pk


# --- joining, leaving, removing, permanent -----------------------------------------------


def test_join_leave_and_remove(admin, advisor):
    t0 = timezone.now()
    ada = advisor()
    code = advisors.advisor_code_current(actor=admin, now=t0)["code"]
    assert advisors.advisor_me(actor=ada, now=t0)["access"] is None

    joined = advisors.advisor_join(actor=ada, code=code, now=t0)
    me = advisors.advisor_me(actor=ada, now=t0 + timedelta(minutes=1))
    assert me["access"]["id"] == joined["id"]
    assert [a["name"] for a in me["areas"]] == ["conversations", "cases", "reports"]
    with pytest.raises(Conflict) as again:
        advisors.advisor_join(actor=ada, code=code, now=t0 + timedelta(minutes=2))
    assert reason(again) == "already_joined"

    left = advisors.advisor_leave(actor=ada, now=t0 + timedelta(minutes=3))
    assert (left["end_reason"], left["live"], left["ended_by"]["id"]) == ("left", False, ada.pk)
    with pytest.raises(Conflict) as nothing:
        advisors.advisor_leave(actor=ada, now=t0 + timedelta(minutes=4))
    assert reason(nothing) == "no_access"

    advisors.advisor_join(actor=ada, code=code, now=t0 + timedelta(minutes=5))
    removed = advisors.advisor_remove(actor=admin, advisor_id=ada.pk, now=t0 + timedelta(minutes=6))
    assert removed["access"] is None and removed["ended"]["end_reason"] == "removed"
    assert advisors.advisor_access_check(advisor=ada, now=t0 + timedelta(minutes=7)) is None
    with pytest.raises(Conflict) as gone:
        advisors.advisor_remove(actor=admin, advisor_id=ada.pk, now=t0 + timedelta(minutes=8))
    assert reason(gone) == "no_access"

    assert [e.outcome for e in entries("advisor.left")] == ["ok", "refused"]
    removal = entries("advisor.removed")
    assert [(e.actor_id, e.outcome) for e in removal] == [(admin.pk, "ok"), (admin.pk, "refused")]
    assert removal[0].object_id == str(ada.pk) and removal[0].after["end_reason"] == "removed"
    assert audit_chain_verify().ok


def test_temporary_access_ends_by_itself(admin, advisor):
    t0 = timezone.now()
    ada = advisor()
    code = advisors.advisor_code_current(actor=admin, now=t0)["code"]
    advisors.advisor_join(actor=ada, code=code, now=t0)
    end = t0 + timedelta(hours=8)
    assert advisors.advisor_access_check(advisor=ada, now=end - timedelta(seconds=1))
    assert advisors.advisor_access_check(advisor=ada, now=end + timedelta(seconds=1)) is None
    grant = AdvisorGrant.objects.get(advisor=ada)
    assert (grant.end_reason, grant.ended_at, grant.ended_by_id) == ("expired", end, None)
    [expired] = entries("advisor.expired")
    assert (expired.actor_role, expired.object_id) == ("system", str(ada.pk))


def test_permanent_advisor(admin, advisor):
    t0 = timezone.now()
    ada, bea = advisor("ada"), advisor("bea")
    assigned = advisors.advisor_assign_permanent(actor=admin, advisor_id=ada.pk, now=t0)
    assert assigned["access"]["kind"] == "permanent" and assigned["access"]["ends_at"] is None
    assert advisors.advisor_access_check(advisor=ada, now=t0 + timedelta(days=400))
    with pytest.raises(Conflict) as twice:
        advisors.advisor_assign_permanent(actor=admin, advisor_id=ada.pk, now=t0)
    assert reason(twice) == "already_permanent"

    # A temporary access becomes permanent in place (the advisor's session goes on).
    code = advisors.advisor_code_current(actor=admin, now=t0)["code"]
    temporary = advisors.advisor_join(actor=bea, code=code, now=t0)
    upgraded = advisors.advisor_assign_permanent(actor=admin, advisor_id=bea.pk, now=t0)
    assert upgraded["access"]["id"] == temporary["id"]
    assert upgraded["access"]["granted_by"]["id"] == admin.pk
    entry = entries("advisor.assigned")[-1]
    assert (entry.before["kind"], entry.after["kind"]) == ("temporary", "permanent")

    overview = advisors.advisors_overview(actor=admin, now=t0)
    assert {a["username"]: a["access"]["kind"] for a in overview["advisors"]} == {
        "ada": "permanent",
        "bea": "permanent",
    }
    advisors.advisor_remove(actor=admin, advisor_id=ada.pk, now=t0 + timedelta(days=3))
    overview = advisors.advisors_overview(actor=admin, now=t0 + timedelta(days=3))
    assert [a["access"] for a in overview["advisors"] if a["username"] == "ada"] == [None]
    assert overview["history"][0]["advisor"]["id"] == ada.pk


def test_bad_input_is_refused_precisely_and_audited(admin, advisor, staff):
    t0 = timezone.now()
    ada = advisor()
    operator = staff("op1")
    advisors.advisor_code_current(actor=admin, now=t0)

    with pytest.raises(ValidationFailed) as unknown:
        advisors.advisor_join(actor=ada, code="ZZZZ-ZZZZ", now=t0)
    assert reason(unknown) == "unknown_code"
    with pytest.raises(ValidationFailed) as shape:
        advisors.advisor_join(actor=ada, code="12", now=t0)
    assert (shape.value.data["field"], reason(shape)) == ("code", "bad_format")
    with pytest.raises(PermissionDenied) as outsider:
        advisors.advisor_join(actor=operator, code="ZZZZ-ZZZZ", now=t0)
    assert reason(outsider) == "not_an_advisor"
    with pytest.raises(ValidationFailed) as not_advisor:
        advisors.advisor_remove(actor=admin, advisor_id=operator.pk, now=t0)
    assert (not_advisor.value.data["field"], reason(not_advisor)) == (
        "advisor_id",
        "not_an_advisor",
    )
    with pytest.raises(NotFound):
        advisors.advisor_assign_permanent(actor=admin, advisor_id=999_999, now=t0)
    with pytest.raises(PermissionDenied):
        advisors.advisor_remove(actor=operator, advisor_id=ada.pk, now=t0)

    refused = AuditEntry.objects.filter(outcome="refused", action__startswith="advisor.")
    assert refused.count() == 6
    assert refused.filter(actor_id=operator.pk, action="advisor.joined").get().actor_role == (
        "Operator"
    )
    assert not AdvisorGrant.objects.exists()


def test_wrong_codes_are_limited(admin, advisor, settings):
    settings.HUB_ADVISOR_JOIN_MAX_ATTEMPTS = 3
    t0 = timezone.now()
    ada = advisor()
    code = advisors.advisor_code_current(actor=admin, now=t0)["code"]
    for _ in range(3):
        with pytest.raises(ValidationFailed):
            advisors.advisor_join(actor=ada, code="ZZZZ-ZZZZ", now=t0)
    with pytest.raises(HubError) as limited:
        advisors.advisor_join(actor=ada, code=code, now=t0)  # even the right one, for now
    assert (limited.value.status, limited.value.code) == (429, "rate_limited")


def test_account_creation_over_http(client, admin, staff):
    client.force_login(admin)
    created = post(
        client,
        "/api/advisors/accounts/",
        {"username": "ext-1", "password": PASSWORD, "first_name": "Erik", "email": "e@x.example"},
    )
    assert created.status_code == 201, created.content
    advisor = created.json()["advisor"]
    assert (advisor["username"], advisor["access"]) == ("ext-1", None)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="ext-1")
    assert advisors.is_advisor(user) and not user.is_staff
    assert [g.name for g in user.groups.all()] == ["External advisor"]

    cases = [
        ({"username": "ext-1", "password": PASSWORD}, 409, "conflict", "username"),
        ({"username": "ext-2", "password": "short"}, 400, "invalid_value", "password"),
        ({"username": "bad name!", "password": PASSWORD}, 400, "invalid_value", "username"),
        (
            {"username": "ext-3", "password": PASSWORD, "email": "nope"},
            400,
            "invalid_value",
            "email",
        ),
        ({"password": PASSWORD}, 400, "missing_field", "username"),
        ({"username": 7, "password": PASSWORD}, 400, "wrong_type", "username"),
    ]
    for body, status, code, field in cases:
        answer = post(client, "/api/advisors/accounts/", body)
        assert (answer.status_code, answer.json()["code"]) == (status, code), body
        assert answer.json()["data"]["field"] == field
    assert get_user_model().objects.filter(username__startswith="ext-").count() == 1

    client.force_login(staff("coord", Role.COORDINATOR))
    refused = post(client, "/api/advisors/accounts/", {"username": "x", "password": PASSWORD})
    assert (refused.status_code, refused.json()["data"]["reason"]) == (403, "not_an_admin")
    assert client.get("/staff/advisors/").status_code == 403


# --- reads, writes, sessions over HTTP ----------------------------------------------------


def join_over_http(client, admin, user) -> dict:
    code = advisors.advisor_code_current(actor=admin)["code"]
    client.login(username=user.get_username(), password=PASSWORD)
    joined = post(client, "/api/advisors/join/", {"code": code})
    assert joined.status_code == 201, joined.content
    return joined.json()["access"]


def test_reads_are_audited_one_entry_per_read(client, admin, advisor, conversation):
    ada = advisor()
    access = join_over_http(client, admin, ada)

    listing = client.get("/api/advisors/conversations/")
    assert listing.status_code == 200
    assert [c["id"] for c in listing.json()["conversations"]] == [conversation["id"]]
    url = f"/api/advisors/conversations/{conversation['id']}/messages/"
    page = client.get(url)
    assert page.status_code == 200
    assert [m["text"] for m in page.json()["messages"]] == ["My card was stolen"]
    client.get(url)

    reads = entries("advisor.read")
    assert len(reads) == 3
    assert all(
        (e.actor_id, e.actor_role, e.outcome) == (ada.pk, "External advisor", "ok") for e in reads
    )
    assert reads[0].after["conversation_ids"] == [conversation["id"]]
    assert reads[1].conversation_id == conversation["id"]
    assert reads[1].object_type == "customer"
    assert reads[1].object_id == conversation["customer"]["id"]
    assert reads[1].after["grant_id"] == access["id"] and len(reads[1].after["message_ids"]) == 1

    # Reports: the dashboard's own endpoint, by permission; the gate audits the read.
    report = client.get("/api/dashboard/live/")
    assert report.status_code == 200, report.content
    assert entries("advisor.read")[-1].after["area"] == "reports"
    # Cases: the case API's own endpoint, by permission (backoffice_bridge.view_all_cases).
    cases = client.get("/api/cases/")
    assert cases.status_code == 200, cases.content
    assert entries("advisor.read")[-1].after["area"] == "cases"

    bad = client.get("/api/advisors/conversations/not-a-uuid/messages/")
    assert (bad.status_code, bad.json()["code"]) == (404, "not_found")
    bad = client.get(url + "?limit=0")
    assert (bad.status_code, bad.json()["data"]["field"]) == (400, "limit")
    assert len(entries("advisor.read", outcome="refused")) == 2
    assert audit_chain_verify().ok


def test_an_advisor_without_access_reads_nothing(client, admin, advisor, conversation):
    ada = advisor()
    client.login(username="ada", password=PASSWORD)
    answer = client.get("/api/advisors/conversations/")
    assert (answer.status_code, answer.json()["data"]["reason"]) == (403, "advisor_no_access")
    assert client.get("/api/dashboard/live/").status_code == 403
    # Their page (to join) and their own state are reachable.
    assert client.get("/advisor/").status_code == 200
    assert client.get("/api/advisors/me/").json()["access"] is None
    assert client.get("/console/").url == "/advisor/"
    assert entries("advisor.request_refused")[0].actor_id == ada.pk
    # Staff are not advisors: their own REST reads are the staff endpoints.
    client.force_login(admin)
    answer = client.get("/api/advisors/conversations/")
    assert (answer.status_code, answer.json()["data"]["reason"]) == (403, "not_an_advisor")


def test_every_write_is_refused_for_an_advisor(client, admin, advisor, conversation):
    ada = advisor()
    join_over_http(client, admin, ada)
    cid = conversation["id"]
    writes = [
        (f"/api/conversations/{cid}/messages/", {"client_id": "x", "text": "hello"}),
        (f"/api/conversations/{cid}/close/", {}),
        (f"/api/conversations/{cid}/transfer/", {"to_operator_id": admin.pk}),
        (f"/api/backoffice/conversations/{cid}/requests/", {"action_type": "block_user"}),
        ("/api/presence/", {"presence": "online"}),
        ("/api/advisors/code/rotate/", {}),
        (f"/api/advisors/{ada.pk}/permanent/", {}),
    ]
    for url, body in writes:
        answer = post(client, url, body)
        assert answer.status_code == 403, url
        assert answer.json()["data"]["reason"] == "advisor_read_only", url
    refused = entries("advisor.request_refused")
    assert [e.after["path"] for e in refused] == [url for url, _ in writes]
    assert {e.after["method"] for e in refused} == {"POST"}
    # Nothing was written: the customer's message is still the only one.
    from chat.models import Message

    assert Message.objects.filter(conversation_id=cid).count() == 1
    # Behind the gate the services refuse too: an advisor holds no handle/start perms.
    with pytest.raises(NotFound):
        chat_services.operator_message_send(
            actor=ada, conversation_id=cid, client_id="y", text="hi"
        )
    with pytest.raises(NotFound):
        chat_services.conversation_close(actor=ada, conversation_id=cid)


def test_removal_ends_the_session_and_the_token(client, admin, advisor, conversation):
    ada = advisor()
    join_over_http(client, admin, ada)
    token = post(client, "/api/auth/token/", {"username": "ada", "password": PASSWORD})
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token.json()['token']}"}
    assert client.get("/api/advisors/conversations/").status_code == 200
    assert client.get("/api/advisors/conversations/", **bearer).status_code == 200

    advisors.advisor_remove(actor=admin, advisor_id=ada.pk)

    ended = client.get("/api/advisors/conversations/")
    assert (ended.status_code, ended.json()["data"]["reason"]) == (401, "advisor_access_ended")
    # The session is gone: the next request is anonymous.
    assert client.get("/api/advisors/me/").status_code == 401
    assert client.get("/advisor/").url.startswith("/accounts/login/")
    assert client.get("/api/advisors/me/", **bearer).status_code == 401  # token revoked


def test_a_page_request_after_leaving_redirects_to_the_login(client, admin, advisor):
    ada = advisor()
    join_over_http(client, admin, ada)
    assert client.get("/dashboard/").status_code == 200
    left = post(client, "/api/advisors/leave/")
    assert left.json()["logged_out"] is True
    assert client.get("/dashboard/").url.startswith("/accounts/login/")


def test_the_session_ends_when_the_temporary_access_runs_out(client, admin, advisor, settings):
    settings.HUB_ADVISOR_TEMPORARY_HOURS = 0  # the access ends the moment it starts
    ada = advisor()
    join_over_http(client, admin, ada)
    page = client.get("/dashboard/")
    assert page.status_code == 302 and page.url.startswith("/accounts/login/")
    assert AdvisorGrant.objects.get(advisor=ada).end_reason == "expired"
    assert client.get("/api/advisors/me/").status_code == 401


@pytest.mark.django_db(transaction=True)
async def test_an_advisor_gets_no_console_socket(admin, advisor):
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from chat.consumers import ConsoleConsumer

    def setup():
        ada = advisor()
        code = advisors.advisor_code_current(actor=admin)["code"]
        advisors.advisor_join(actor=ada, code=code)
        return ada

    ada = await database_sync_to_async(setup)()
    communicator = WebsocketCommunicator(ConsoleConsumer.as_asgi(), "/ws/console/")
    communicator.scope["user"] = ada
    await communicator.connect()
    assert (await communicator.receive_output(timeout=5))["code"] == 4403


@pytest.mark.django_db(transaction=True)
def test_the_gate_holds_on_an_async_chain(admin, advisor):
    """Under daphne an async view's chain stays async: the gate refuses there too."""
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connection
    from django.http import HttpResponse
    from django.test import RequestFactory

    ada = advisor()
    advisors.advisor_join(actor=ada, code=advisors.advisor_code_current(actor=admin)["code"])

    async def view(request):
        return HttpResponse("ok")

    gate = advisors.AdvisorGateMiddleware(view)
    assert asyncio.iscoroutinefunction(gate)

    async def through_gate(request):
        try:
            return await gate(request)
        finally:  # the database thread's connection, so the test database can be dropped
            await sync_to_async(lambda: connection.close())()

    for user, status in ((ada, 403), (admin, 200)):
        request = RequestFactory().post("/channels/webchat/webhook")
        request.user, request.hub_auth = user, "token"
        assert asyncio.run(through_gate(request)).status_code == status
    assert entries("advisor.request_refused")[0].after["reason"] == "advisor_read_only"
