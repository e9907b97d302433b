"""The hash-chained audit log: every transition and every refused attempt writes an
entry; nothing edits or deletes one (ORM, admin, database trigger); ``audit_verify``
names the first edited, deleted or reordered row (tampered with raw SQL after disabling
the trigger); concurrent appends on PostgreSQL form one unforked chain; the admins' REST
list and CSV export."""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3
import threading
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from backoffice_bridge import services
from backoffice_bridge.audit import audit_append, audit_chain_verify, entry_hash
from backoffice_bridge.executor import executions_wait
from backoffice_bridge.models import AuditEntry, AuditImmutable
from hub.exceptions import Conflict, HubError, PermissionDenied

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = AuditEntry._meta.db_table
BLOCK = {"reason": "lost_device"}


def _flow(linked):
    """link (fixture) → create → pick → release → approve → execute → outcome → the
    link's status refreshed from the answer (8 entries)."""
    req = services.action_request_create(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        action_type="block_user",
        params=BLOCK,
    )
    services.action_request_pick(actor=linked["checker"], request_id=req["id"])
    services.action_request_release(actor=linked["checker"], request_id=req["id"])
    services.action_request_approve(actor=linked["checker2"], request_id=req["id"])
    # The call runs after the approval's commit on the background executor.
    assert executions_wait(30)
    return req


def _verify_fails() -> str:
    with pytest.raises(CommandError) as broken:
        call_command("audit_verify")
    assert broken.value.returncode == 1
    return str(broken.value)


def _tamper(*statements: str, params=()) -> None:
    """Raw SQL with the append-only trigger switched off for the statements."""
    trigger = "backoffice_audit_no_update_delete"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {trigger}")
        for sql in statements:
            cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {trigger}")


def test_every_step_is_audited_in_order_and_the_chain_holds(linked, bo, capsys):
    req = _flow(linked)
    rows = list(AuditEntry.objects.order_by("sequence"))
    assert [e.sequence for e in rows] == list(range(1, len(rows) + 1))
    assert [e.action for e in rows] == [
        "customer.link",
        "request.create",
        "request.pick",
        "request.release",
        "request.approve",
        "request.execute",
        "request.outcome",
        "customer.status_refresh",
    ]
    assert rows[0].prev_hash == "0" * 64
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    approve = rows[4]
    assert approve.actor_id == linked["checker2"].pk and approve.actor_role == "Admin"
    assert approve.on_behalf_of == "U1001" and approve.request_id == req["id"]
    assert approve.conversation_id == linked["conversation_id"]
    assert approve.before["status"] == "pending" and approve.after["status"] == "approved"
    assert rows[6].after["status"] == "done"
    assert (rows[7].before, rows[7].after) == ({"status": "active"}, {"status": "suspended"})
    call_command("audit_verify")
    assert "audit chain intact: 8 entries" in capsys.readouterr().out
    services.customer_unlink(actor=linked["maker"], conversation_id=linked["conversation_id"])
    assert AuditEntry.objects.order_by("-sequence").first().action == "customer.unlink"


def test_refused_attempts_are_audited(linked, bo, settings):
    coordinator = linked["checker"]
    own = services.action_request_create(
        actor=coordinator,
        conversation_id=linked["conversation_id"],
        action_type="block_user",
        params=BLOCK,
    )
    with pytest.raises(PermissionDenied):
        services.action_request_approve(actor=coordinator, request_id=own["id"])
    services.action_request_reject(actor=linked["checker2"], request_id=own["id"], reason="x")
    settings.BACKOFFICE_REQUEST_TTL_MINUTES = 1
    late = services.action_request_create(
        actor=linked["maker"],
        conversation_id=linked["conversation_id"],
        action_type="unblock_user",
        params={},
    )
    with pytest.raises(Conflict):
        services.action_request_approve(
            actor=coordinator, request_id=late["id"], now=timezone.now() + timedelta(minutes=2)
        )
    with pytest.raises(HubError):
        services.action_request_create(
            actor=linked["maker"],
            conversation_id=linked["conversation_id"],
            action_type="temporary_limits",
            params={"daily_transfer": -1, "single_transfer": 0},
        )
    refused = list(AuditEntry.objects.filter(outcome="refused").order_by("sequence"))
    assert [(e.action, e.after["error"]["data"].get("reason")) for e in refused] == [
        ("request.approve", "own_request"),
        ("request.approve", "expired"),
        ("request.create", "negative"),
    ]
    assert refused[0].actor_id == coordinator.pk and refused[0].request_id == own["id"]
    assert refused[2].after["attempt"]["params"] == {"daily_transfer": -1, "single_transfer": 0}
    assert audit_chain_verify().ok


def test_entries_cannot_be_changed_through_the_orm_or_the_database(linked):
    entry = AuditEntry.objects.get()
    entry.action = "nothing.happened"
    with pytest.raises(AuditImmutable):
        entry.save()
    with pytest.raises(AuditImmutable):
        entry.delete()
    with pytest.raises(AuditImmutable):
        AuditEntry.objects.filter(pk=entry.pk).update(action="x")
    with pytest.raises(AuditImmutable):
        AuditEntry.objects.all().delete()
    for sql in (f"UPDATE {TABLE} SET action = 'x'", f"DELETE FROM {TABLE}"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_append(action="x", actor=None)
    assert AuditEntry.objects.get().action == "customer.link"


def test_the_admin_is_read_only(linked, client, staff):
    from hub.roles import Role

    admin = staff("audit-admin", Role.ADMIN)
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    client.force_login(admin)
    entry = AuditEntry.objects.get()
    base = "/admin/backoffice_bridge/auditentry/"
    assert client.get(base).status_code == 200
    assert client.get(f"{base}{entry.pk}/change/").status_code == 200  # a view, no form
    assert client.post(f"{base}{entry.pk}/delete/").status_code == 403
    assert client.post(f"{base}add/", {}).status_code == 403
    answer = client.post(f"{base}{entry.pk}/change/", {"action": "x"})
    assert answer.status_code == 403
    assert AuditEntry.objects.get().action == "customer.link"


def test_verify_reports_an_edited_row(linked, bo):
    _flow(linked)
    _tamper(f'UPDATE {TABLE} SET after = \'{{"status": "rejected"}}\' WHERE sequence = 4')
    message = _verify_fails()
    assert "entry 4 (hash_mismatch)" in message and "3 entries before it hold" in message


def test_verify_reports_an_edit_that_recomputed_its_hash(linked, bo):
    _flow(linked)
    row = AuditEntry.objects.values().get(sequence=3)
    row["action"] = "request.reject"
    forged = entry_hash(row, row["prev_hash"])
    _tamper(
        f"UPDATE {TABLE} SET action = %s, hash = %s WHERE sequence = 3",
        params=[row["action"], forged],
    )
    assert "entry 4 (broken_link)" in _verify_fails()


def test_verify_reports_a_deleted_row(linked, bo):
    _flow(linked)
    _tamper(f"DELETE FROM {TABLE} WHERE sequence = 5")
    message = _verify_fails()
    assert "entry 5 (missing)" in message and "the next one found is 6" in message


def test_verify_reports_the_newest_row_deleted(linked, bo):
    _flow(linked)
    _tamper(f"DELETE FROM {TABLE} WHERE sequence = 8")
    message = _verify_fails()
    assert "entry 8 (missing)" in message and "chain head says 8" in message


def test_verify_reports_a_reordered_row(linked, bo):
    _flow(linked)
    # Entries 3 and 4 swap places (the sequence is unique: through a free number).
    _tamper(
        f"UPDATE {TABLE} SET sequence = -3 WHERE sequence = 3",
        f"UPDATE {TABLE} SET sequence = 3 WHERE sequence = 4",
        f"UPDATE {TABLE} SET sequence = 4 WHERE sequence = -3",
    )
    assert "entry 3 (broken_link)" in _verify_fails()


def test_concurrent_appends_form_one_unforked_chain(db):
    threads, per_thread = 8, 10
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def append(n: int) -> None:
        from django.db import connections

        try:
            barrier.wait(15)
            for i in range(per_thread):
                with transaction.atomic():
                    audit_append(action="test.concurrent", actor=None, object_id=f"{n}:{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=append, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert errors == []
    rows = list(AuditEntry.objects.order_by("sequence").values("sequence", "prev_hash", "hash"))
    assert [r["sequence"] for r in rows] == list(range(1, threads * per_thread + 1))
    assert len({r["prev_hash"] for r in rows}) == len(rows)  # no two entries share a parent
    assert audit_chain_verify().ok


def test_sqlite_triggers_refuse_update_and_delete():
    """The embedded default (SQLite) gets the same triggers from migration 0003."""
    import importlib

    migration = importlib.import_module("backoffice_bridge.migrations.0003_audit_append_only")
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, action TEXT)")
    for statement in migration.SQLITE_UP:
        db.execute(statement)
    db.execute(f"INSERT INTO {TABLE} (action) VALUES ('a')")
    for sql in (f"UPDATE {TABLE} SET action = 'b'", f"DELETE FROM {TABLE}"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    assert db.execute(f"SELECT action FROM {TABLE}").fetchall() == [("a",)]


def test_rest_list_filters_pages_and_csv(linked, bo, client):
    req = _flow(linked)
    client.force_login(linked["checker"])  # a coordinator: not the audit's reader
    assert client.get("/api/audit/").status_code == 403
    assert client.get("/api/audit/export.csv").status_code == 403
    client.force_login(linked["checker2"])  # an admin
    everything = client.get("/api/audit/").json()
    assert everything["total"] == 8 and everything["entries"][0]["sequence"] == 8
    by_actor = client.get(f"/api/audit/?actor={linked['checker'].pk}").json()
    assert [e["action"] for e in by_actor["entries"]] == ["request.release", "request.pick"]
    by_action = client.get("/api/audit/?action=request.approve").json()["entries"]
    assert [e["request_id"] for e in by_action] == [req["id"]]
    by_conv = client.get(f"/api/audit/?conversation={linked['conversation_id']}").json()
    assert by_conv["total"] == 8
    today = timezone.now().date()
    assert client.get(f"/api/audit/?since={today}&until={today}").json()["total"] == 8
    tomorrow = today + timedelta(days=1)
    assert client.get(f"/api/audit/?since={tomorrow}").json()["total"] == 0
    assert client.get("/api/audit/?since=yesterday").status_code == 400
    page = client.get("/api/audit/?page=2&page_size=3").json()
    assert [e["sequence"] for e in page["entries"]] == [5, 4, 3] and page["next_page"] == 3
    answer = client.get("/api/audit/export.csv?action=request.pick")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert rows[0][:3] == ["sequence", "at", "actor_id"]
    assert len(rows) == 2 and rows[1][0] == "3"
