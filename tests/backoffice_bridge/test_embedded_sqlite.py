"""The bridge on the embedded default (SQLite): the core maker-checker flow — link,
request, pick, approve, execution on the background executor against the stand-in over
real HTTP, outcome with the customer's message, the scheduler's tick for a request no
executor ran, a maker's cancel — then ``audit_verify`` and the append-only triggers.

It runs in a process of its own on a freshly migrated SQLite file (the real migrations,
``tests.harness.sqlite_probe_results``), not on the suite's PostgreSQL: this module is
both the test and the probe (``python -m tests.backoffice_bridge.test_embedded_sqlite``).
On SQLite ``select_for_update`` and ``skip_locked`` are no-ops — the IMMEDIATE
transactions of the embedded default serialise writers instead — so the flow must hold
without row locks.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.harness import sqlite_probe_results

PROBE = "tests.backoffice_bridge.test_embedded_sqlite"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return sqlite_probe_results(PROBE, tmp_path_factory.mktemp("backoffice-sqlite"))


def test_link_request_pick_approve_execute_outcome(results):
    flow = results["flow"]
    assert flow["linked"] == "U1001"
    assert flow["created"] == ["pending", "To Be Inactivated"]
    assert flow["picked"] == "picked"
    assert flow["approved"] == "approved"  # answered before the call
    assert flow["final"] == ["done", "Inactive"]
    assert flow["calls"] == [{"acted": True, "key_matches": True}]
    assert flow["bank_user_status"] == "suspended"
    assert flow["customer_message"]["sent"] is True
    assert flow["customer_message"]["language"] == "es"
    assert flow["told"].startswith("Por su seguridad")
    assert set(flow["events"]) >= {
        "backoffice.customer_linked",
        "backoffice.request_created",
        "backoffice.request_picked",
        "backoffice.request_approved",
        "backoffice.action_outcome",
    }


def test_the_tick_executes_what_no_executor_ran_once(results):
    tick = results["tick"]
    assert tick["approved"] == "approved" and tick["calls_before"] == 0
    assert tick["first"] == {"executed": 1}
    assert tick["second"] == {}
    assert tick["final"] == "done" and tick["acted"] == 1


def test_cancel_and_refusals(results):
    cancel = results["cancel"]
    assert cancel["cancelled"] == ["cancelled", "Cancelled"]
    assert cancel["again"] == "already_decided"
    assert cancel["self_approval"] == "own_request"


def test_audit_chain_and_append_only_triggers(results):
    audit = results["audit"]
    assert audit["verify"].startswith("audit chain intact:")
    assert audit["entries"] >= 12
    assert set(audit["actions"]) >= {
        "customer.link",
        "request.create",
        "request.pick",
        "request.approve",
        "request.execute",
        "request.outcome",
        "request.cancel",
    }
    assert audit["update_refused"] and audit["delete_refused"]


# --- the probe (runs in its own process on SQLite) -------------------------------------


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()

    from django.conf import settings
    from django.db import connection

    from tests.backoffice_bridge.conftest import TOKEN, Standin

    assert connection.vendor == "sqlite", connection.vendor
    with Standin() as bo:
        settings.BACKOFFICE_BASE_URL = bo.url
        settings.BACKOFFICE_TOKEN = TOKEN
        settings.BACKOFFICE_TIMEOUT_SECONDS = 5
        settings.BACKOFFICE_BACKOFF_SECONDS = 0.02
        results = _scenarios(bo, settings)
    print(json.dumps({"vendor": connection.vendor, "results": results}, default=str))


def _scenarios(bo: Any, settings: Any) -> dict[str, Any]:
    from io import StringIO

    from django.core.management import call_command
    from django.db import DatabaseError, connection, transaction

    from backoffice_bridge import services
    from backoffice_bridge.executor import executions_wait
    from backoffice_bridge.models import ActionRequest, AuditEntry
    from chat.models import ConsoleEvent, Message
    from chat.services import webchat_message_receive
    from hub.accounts import staff_user_ensure
    from hub.exceptions import HubError
    from hub.roles import Role
    from routing.services import presence_set

    maker = staff_user_ensure(username="sq-cc", password="pw-sq-cc", role=Role.CONTACT_CENTER)
    presence_set(actor=maker, presence="online")
    checker = staff_user_ensure(username="sq-coord", password="pw-sq", role=Role.COORDINATOR)
    received = webchat_message_receive(
        visitor_id="sq-v1", client_id="1", text="Perdí el móvil", language="es"
    )
    conversation_id = received.conversation["id"]
    out: dict[str, Any] = {}

    # link → request → pick → approve → the executor calls the stand-in → outcome
    link = services.customer_link(
        actor=maker, conversation_id=conversation_id, bank_user_id="U1001"
    )
    req = services.action_request_create(
        actor=maker,
        conversation_id=conversation_id,
        action_type="block_user",
        params={"reason": "lost_device"},
    )
    picked = services.action_request_pick(actor=checker, request_id=req["id"])
    approved = services.action_request_approve(actor=checker, request_id=req["id"])
    assert executions_wait(60), "the executor did not finish"
    row = ActionRequest.objects.get(pk=req["id"])
    out["flow"] = {
        "linked": link["bank_user_id"],
        "created": [req["status"], req["business_status"]],
        "picked": picked["status"],
        "approved": approved["status"],
        "final": [row.status, row.business_status],
        "calls": [
            {"acted": c["acted"], "key_matches": c["idempotency_key"] == row.idempotency_key}
            for c in bo.calls(path="/block")
        ],
        "bank_user_status": bo.user("U1001")["status"],
        "customer_message": row.outcome.get("customer_message"),
        "told": Message.objects.filter(conversation_id=conversation_id, direction="out")
        .order_by("-id")
        .values_list("text", flat=True)
        .first(),
        "events": sorted(set(ConsoleEvent.objects.values_list("kind", flat=True))),
    }

    # a request no executor ran (executor off) is executed by the tick, once
    settings.BACKOFFICE_EXECUTOR = "off"
    unblock = services.action_request_create(
        actor=maker, conversation_id=conversation_id, action_type="unblock_user", params={}
    )
    left = services.action_request_approve(actor=checker, request_id=unblock["id"])
    calls_before = len(bo.calls(path="/unblock"))
    first = services.backoffice_tick()
    second = services.backoffice_tick()
    out["tick"] = {
        "approved": left["status"],
        "calls_before": calls_before,
        "first": {k: v for k, v in first.items() if k == "executed"},
        "second": {k: v for k, v in second.items() if k == "executed"},
        "final": ActionRequest.objects.get(pk=unblock["id"]).status,
        "acted": sum(c["acted"] for c in bo.calls(path="/unblock")),
    }
    settings.BACKOFFICE_EXECUTOR = "thread"

    # the maker cancels; a second cancel and a self-approval are refused
    limits = services.action_request_create(
        actor=checker,  # a coordinator may start requests too; nobody approves their own
        conversation_id=conversation_id,
        action_type="temporary_limits",
        params={"daily_transfer": 900, "single_transfer": 100},
    )
    try:
        services.action_request_approve(actor=checker, request_id=limits["id"])
        self_approval = "approved?!"
    except HubError as exc:
        self_approval = exc.data.get("reason")
    cancelled = services.action_request_cancel(actor=checker, request_id=limits["id"])
    try:
        services.action_request_cancel(actor=checker, request_id=limits["id"])
        again = "cancelled twice?!"
    except HubError as exc:
        again = exc.data.get("reason")
    out["cancel"] = {
        "cancelled": [cancelled["status"], cancelled["business_status"]],
        "again": again,
        "self_approval": self_approval,
    }

    # the chain verifies; the triggers of migration 0003 refuse UPDATE and DELETE
    report = StringIO()
    call_command("audit_verify", stdout=report)
    refused = {}
    for verb, sql in (
        ("update", "UPDATE backoffice_bridge_auditentry SET action = 'x' WHERE sequence = 1"),
        ("delete", "DELETE FROM backoffice_bridge_auditentry WHERE sequence = 1"),
    ):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)
            refused[verb] = False
        except DatabaseError as exc:
            refused[verb] = "append-only" in str(exc)
    out["audit"] = {
        "verify": report.getvalue().strip(),
        "entries": AuditEntry.objects.count(),
        "actions": sorted(set(AuditEntry.objects.values_list("action", flat=True))),
        "update_refused": refused["update"],
        "delete_refused": refused["delete"],
    }
    return out


if __name__ == "__main__":
    main()
