"""The back-office stand-in over real loopback HTTP: auth, search, idempotency, the bank's
maximum, failures on demand, the call log and reset."""

from __future__ import annotations

from tests.backoffice_bridge.conftest import http


def test_bearer_token_is_required(bo):
    status, body = http("GET", bo.url + "/api/v1/users/U1001")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, _ = http(
        "GET", bo.url + "/api/v1/users/U1001", headers={"Authorization": "Bearer wrong"}
    )
    assert status == 401


def test_search_every_column_and_one_column(bo):
    status, body = bo.api("GET", "/api/v1/users?q=Garcia")
    assert status == 200 and [u["id"] for u in body["users"]] == ["U1001"]
    for field, value in [
        ("mobile", "600 111 222"),
        ("personal_id", "12345678z"),
        ("core_banking_id", "CB-0001002"),
        ("system_user_id", "SYS-503"),
        ("email", "eva.novak@"),
    ]:
        status, body = bo.api("GET", f"/api/v1/users?q={value.replace(' ', '%20')}&field={field}")
        assert status == 200 and len(body["users"]) == 1, (field, body)
    status, body = bo.api("GET", "/api/v1/users?q=x")
    assert status == 400 and body["error"]["code"] == "invalid_query"


def test_a_repeated_key_answers_the_first_answer_and_acts_once(bo):
    first = bo.api("POST", "/api/v1/users/U1001/block", {"reason": "lost_device"}, key="k-1")
    again = bo.api("POST", "/api/v1/users/U1001/block", {"reason": "lost_device"}, key="k-1")
    assert first == again and first[0] == 200
    assert first[1]["user"]["status"] == "suspended"
    rows = bo.calls(key="k-1")
    assert [r["acted"] for r in rows] == [True, False]
    assert [r["replayed"] for r in rows] == [False, True]
    # The same key for another request is refused; a write without a key too.
    status, body = bo.api("POST", "/api/v1/users/U1002/block", {"reason": "x"}, key="k-1")
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
    status, body = bo.api("POST", "/api/v1/users/U1002/block", {"reason": "x"})
    assert status == 400 and body["error"]["code"] == "idempotency_key_required"


def test_limits_above_the_maximum_and_negative_are_refused_with_a_reason(bo):
    status, body = bo.api(
        "POST",
        "/api/v1/users/U1001/limits/temporary",
        {"daily_transfer": 50_001, "single_transfer": 10},
        key="l-1",
    )
    assert status == 422
    assert body["error"] == {
        "code": "limit_above_maximum",
        "reason": "daily_transfer 50001 is above the bank's maximum of 50000",
    }
    status, body = bo.api(
        "POST",
        "/api/v1/users/U1001/limits/temporary",
        {"daily_transfer": -1, "single_transfer": 10},
        key="l-2",
    )
    assert status == 422 and body["error"]["code"] == "negative_limit"
    assert bo.user("U1001")["temporary_limits"] is None


def test_faults_on_demand_then_reset(bo):
    bo.fault(status=503, count=2, path="/users/U1001")
    assert bo.api("GET", "/api/v1/users/U1001")[0] == 503
    assert bo.api("GET", "/api/v1/users/U1002")[0] == 200  # not matched
    assert bo.api("GET", "/api/v1/users/U1001")[0] == 503
    assert bo.api("GET", "/api/v1/users/U1001")[0] == 200
    bo.fault(status=409, reason="user under investigation")
    status, body = bo.api("POST", "/api/v1/users/U1001/unblock", {}, key="u-1")
    assert status == 409 and body["error"]["reason"] == "user under investigation"
    assert bo.calls(path="/users/U1001")
    bo.reset()
    assert bo.calls() == []


def test_cases_open_and_read(bo):
    status, body = bo.api(
        "POST",
        "/api/v1/cases",
        {"kind": "claim", "user_id": "U1001", "subject": "Unknown card payment"},
        key="c-1",
    )
    assert status == 201 and body["case"]["state"] == "open"
    case_id = body["case"]["id"]
    assert bo.api("GET", f"/api/v1/cases/{case_id}")[1]["case"]["kind"] == "claim"
    again = bo.api(
        "POST",
        "/api/v1/cases",
        {"kind": "claim", "user_id": "U1001", "subject": "Unknown card payment"},
        key="c-1",
    )
    assert again[1]["case"]["id"] == case_id  # one case, not two
