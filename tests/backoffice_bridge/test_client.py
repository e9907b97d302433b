"""The hub's client against the stand-in over real HTTP: retries with the same idempotency
key on 5xx, hangs and lost answers, never on 4xx, bounded; never inside a transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from backoffice_bridge.client import (
    BackofficeNotConfigured,
    BackofficeRefused,
    BackofficeUnavailable,
    backoffice_call,
    user_path,
)


def _block(key: str):
    return lambda c: c.write(
        user_path("U1001", "block"), idempotency_key=key, body={"reason": "lost_device"}
    )


def test_5xx_is_retried_with_the_same_key_and_acts_once(bo):
    bo.fault(status=503, count=2)
    answer = backoffice_call(_block("r-1"))
    assert answer.status == 200 and answer.attempts == 3
    rows = bo.calls(key="r-1")
    assert [r["status"] for r in rows] == [503, 503, 200]
    assert sum(r["acted"] for r in rows) == 1


def test_a_lost_answer_is_retried_and_replayed_not_acted_twice(bo):
    # The back office blocks the user, then its answer is lost (a 502, then a hang).
    bo.fault(status=502, after_action=True)
    bo.fault(timeout_seconds=2, after_action=True)
    answer = backoffice_call(_block("r-2"))
    assert answer.status == 200 and answer.replayed and answer.attempts == 3
    rows = bo.calls(key="r-2")
    assert [r["acted"] for r in rows] == [True, False, False]
    assert bo.user("U1001")["status"] == "suspended"


def test_a_hang_before_acting_is_retried(bo):
    bo.fault(timeout_seconds=2)
    answer = backoffice_call(_block("r-3"))
    assert answer.status == 200 and answer.attempts == 2


def test_4xx_is_not_retried(bo):
    bo.fault(status=409, reason="user under investigation", count=5)
    with pytest.raises(BackofficeRefused) as refused:
        backoffice_call(_block("r-4"))
    assert refused.value.status == 409 and refused.value.reason == "user under investigation"
    assert len(bo.calls(key="r-4")) == 1


def test_retries_are_bounded(bo, settings):
    bo.fault(status=500, count=10)
    with pytest.raises(BackofficeUnavailable) as unavailable:
        backoffice_call(_block("r-5"))
    assert unavailable.value.attempts == settings.BACKOFFICE_ATTEMPTS
    assert len(bo.calls(key="r-5")) == settings.BACKOFFICE_ATTEMPTS
    assert bo.user("U1001")["status"] == "active"


def test_connection_errors_are_retried_then_unavailable(bo, settings):
    settings.BACKOFFICE_BASE_URL = "http://127.0.0.1:9"  # discard port: refused
    with pytest.raises(BackofficeUnavailable) as unavailable:
        backoffice_call(lambda c: c.user_get(user_id="U1001"))
    assert "connection error" in unavailable.value.reason


def test_no_secret_defaults(settings):
    settings.BACKOFFICE_TOKEN = ""
    with pytest.raises(BackofficeNotConfigured):
        backoffice_call(lambda c: c.user_get(user_id="U1001"))


@pytest.mark.django_db(transaction=True)
def test_never_inside_a_transaction(bo):
    with transaction.atomic(), pytest.raises(RuntimeError, match="inside a database transaction"):
        backoffice_call(lambda c: c.user_get(user_id="U1001"))
    assert bo.calls() == []
