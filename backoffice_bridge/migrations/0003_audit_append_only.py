"""The audit log is append-only in the database too: triggers refuse UPDATE and DELETE of
``backoffice_bridge_auditentry`` rows on PostgreSQL and SQLite, whatever the client (the
app, the admin, a shell).  TRUNCATE is left to the database owner (and Django's test
flush); a row removed that way still shows in ``audit_verify`` against the chain head.
"""

from django.db import migrations

TABLE = "backoffice_bridge_auditentry"

POSTGRES_UP = f"""
CREATE OR REPLACE FUNCTION backoffice_audit_refuse() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'backoffice audit log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER backoffice_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION backoffice_audit_refuse();
"""
POSTGRES_DOWN = f"""
DROP TRIGGER IF EXISTS backoffice_audit_no_update_delete ON {TABLE};
DROP FUNCTION IF EXISTS backoffice_audit_refuse();
"""
SQLITE_UP = [
    f"""CREATE TRIGGER backoffice_audit_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'backoffice audit log is append-only (UPDATE refused)'); END""",
    f"""CREATE TRIGGER backoffice_audit_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'backoffice audit log is append-only (DELETE refused)'); END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS backoffice_audit_no_update",
    "DROP TRIGGER IF EXISTS backoffice_audit_no_delete",
]


def _run(schema_editor, postgres, sqlite):
    # A plain cursor without parameters: the plpgsql body holds RAISE's own '%'.
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(postgres)
        elif vendor == "sqlite":
            for statement in sqlite:
                cursor.execute(statement)


def up(apps, schema_editor):
    _run(schema_editor, POSTGRES_UP, SQLITE_UP)


def down(apps, schema_editor):
    _run(schema_editor, POSTGRES_DOWN, SQLITE_DOWN)


class Migration(migrations.Migration):
    dependencies = [("backoffice_bridge", "0002_consent_audit_confirmation")]

    operations = [migrations.RunPython(up, down)]
