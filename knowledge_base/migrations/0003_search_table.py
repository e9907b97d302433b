"""A narrow search table holding only the live replies, per database (see
knowledge_base/search.py), in place of the full-text structures on the reply table itself.

Why: a search ranked every match of a common word ("card": one reply in six) and read the
whole reply row of each to check ``active`` / ``retired_at``; most of the time went there.
The new structures hold only live (active, not retired) replies and only what the search
reads, so the search filters nothing and reads reply rows only for the ten it returns.

SQLite: ``kb_search`` (FTS5 over the folded title and body, its own copy of the text so a
row is deleted by rowid alone) and ``kb_search_doc`` (shortcut, language, types, position).
PostgreSQL: ``kb_search`` (the same columns plus a title ``tsvector`` and a weighted
title-and-body ``tsvector``, each with a GIN index).

Both are kept in sync by triggers on ``knowledge_base_reply``, so every write (the services,
a bulk load, a deletion, a flush) keeps them right.  The vocabulary trigram table of 0002 is
unchanged.
"""

import importlib

from django.db import migrations

SQLITE_FORWARD = [
    # The old FTS5 table over the reply table (0002), replaced by kb_search.
    "DROP TRIGGER IF EXISTS kb_reply_fts_au",
    "DROP TRIGGER IF EXISTS kb_reply_fts_ad",
    "DROP TRIGGER IF EXISTS kb_reply_fts_ai",
    "DROP TABLE IF EXISTS kb_reply_fts",
    """CREATE TABLE kb_search_doc (
        id INTEGER PRIMARY KEY,
        shortcut TEXT NOT NULL,
        language TEXT NOT NULL,
        types TEXT NOT NULL,
        position INTEGER NOT NULL)""",
    "CREATE INDEX kb_search_doc_shortcut ON kb_search_doc (shortcut, position)",
    "CREATE INDEX kb_search_doc_position ON kb_search_doc (position)",
    # The 3-letter prefix index serves the shortest prefix a search uses (search.MIN_PREFIX).
    """CREATE VIRTUAL TABLE kb_search USING fts5(
        title, body, tokenize='unicode61 remove_diacritics 2', prefix='3')""",
    """CREATE TRIGGER kb_search_ai AFTER INSERT ON knowledge_base_reply
    WHEN new.active AND new.retired_at IS NULL BEGIN
        INSERT INTO kb_search(rowid, title, body)
        VALUES (new.id, new.search_title, new.search_body);
        INSERT INTO kb_search_doc(id, shortcut, language, types, position)
        VALUES (new.id, new.shortcut, new.language, new.search_types, new.position);
    END""",
    """CREATE TRIGGER kb_search_ad AFTER DELETE ON knowledge_base_reply BEGIN
        DELETE FROM kb_search WHERE rowid = old.id;
        DELETE FROM kb_search_doc WHERE id = old.id;
    END""",
    # Two update triggers, so a reorder (position only) leaves the full-text index alone.
    """CREATE TRIGGER kb_search_au_text
    AFTER UPDATE OF search_title, search_body, active, retired_at ON knowledge_base_reply BEGIN
        DELETE FROM kb_search WHERE rowid = old.id;
        INSERT INTO kb_search(rowid, title, body)
        SELECT new.id, new.search_title, new.search_body
        WHERE new.active AND new.retired_at IS NULL;
    END""",
    """CREATE TRIGGER kb_search_au_doc
    AFTER UPDATE OF shortcut, language, search_types, position, active, retired_at
    ON knowledge_base_reply BEGIN
        DELETE FROM kb_search_doc WHERE id = old.id;
        INSERT INTO kb_search_doc(id, shortcut, language, types, position)
        SELECT new.id, new.shortcut, new.language, new.search_types, new.position
        WHERE new.active AND new.retired_at IS NULL;
    END""",
    """INSERT INTO kb_search(rowid, title, body)
    SELECT id, search_title, search_body FROM knowledge_base_reply
    WHERE active AND retired_at IS NULL""",
    """INSERT INTO kb_search_doc(id, shortcut, language, types, position)
    SELECT id, shortcut, language, search_types, position FROM knowledge_base_reply
    WHERE active AND retired_at IS NULL""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS kb_search_au_doc",
    "DROP TRIGGER IF EXISTS kb_search_au_text",
    "DROP TRIGGER IF EXISTS kb_search_ad",
    "DROP TRIGGER IF EXISTS kb_search_ai",
    "DROP TABLE IF EXISTS kb_search",
    "DROP TABLE IF EXISTS kb_search_doc",
]

POSTGRES_FORWARD = [
    # The old full-text column on the reply table (0002), replaced by kb_search.
    "DROP INDEX IF EXISTS kb_reply_shortcut_prefix",
    "DROP INDEX IF EXISTS kb_reply_vector_gin",
    "DROP TRIGGER IF EXISTS knowledge_base_reply_vector ON knowledge_base_reply",
    "DROP FUNCTION IF EXISTS knowledge_base_reply_vector()",
    "ALTER TABLE knowledge_base_reply DROP COLUMN IF EXISTS search_vector",
    # No foreign key: Django flushes test databases with TRUNCATE, which a referencing
    # table would refuse; the TRUNCATE trigger below empties this table instead.
    """CREATE TABLE kb_search (
        reply_id bigint PRIMARY KEY,
        shortcut varchar(64) NOT NULL,
        language varchar(16) NOT NULL,
        types varchar(500) NOT NULL,
        position integer NOT NULL,
        title_vector tsvector NOT NULL,
        vector tsvector NOT NULL)""",
    # fastupdate off: replies change rarely, and a pending list makes every search scan it.
    """CREATE INDEX kb_search_title_gin ON kb_search USING GIN (title_vector)
    WITH (fastupdate = off)""",
    "CREATE INDEX kb_search_vector_gin ON kb_search USING GIN (vector) WITH (fastupdate = off)",
    "CREATE INDEX kb_search_shortcut ON kb_search (shortcut varchar_pattern_ops)",
    "CREATE INDEX kb_search_position ON kb_search (position)",
    """CREATE FUNCTION kb_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE'
           AND NEW.search_title IS NOT DISTINCT FROM OLD.search_title
           AND NEW.search_body IS NOT DISTINCT FROM OLD.search_body
           AND (NEW.active AND NEW.retired_at IS NULL)
               IS NOT DISTINCT FROM (OLD.active AND OLD.retired_at IS NULL) THEN
            -- Same text, same liveness (a reorder, a type change): no new vectors.
            UPDATE kb_search SET shortcut = NEW.shortcut, language = NEW.language,
                types = NEW.search_types, position = NEW.position
            WHERE reply_id = NEW.id;
            RETURN NULL;
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            DELETE FROM kb_search WHERE reply_id = OLD.id;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.active AND NEW.retired_at IS NULL THEN
            INSERT INTO kb_search
                (reply_id, shortcut, language, types, position, title_vector, vector)
            VALUES (
                NEW.id, NEW.shortcut, NEW.language, NEW.search_types, NEW.position,
                to_tsvector('simple', coalesce(NEW.search_title, '')),
                setweight(to_tsvector('simple', coalesce(NEW.search_title, '')), 'A')
                || setweight(to_tsvector('simple', coalesce(NEW.search_body, '')), 'C'))
            ON CONFLICT (reply_id) DO UPDATE SET shortcut = EXCLUDED.shortcut,
                language = EXCLUDED.language, types = EXCLUDED.types,
                position = EXCLUDED.position, title_vector = EXCLUDED.title_vector,
                vector = EXCLUDED.vector;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER kb_search_sync
    AFTER INSERT OR DELETE OR UPDATE OF search_title, search_body, search_types, shortcut,
        language, position, active, retired_at
    ON knowledge_base_reply FOR EACH ROW EXECUTE FUNCTION kb_search_sync()""",
    """CREATE FUNCTION kb_search_clear() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM kb_search;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER kb_search_clear AFTER TRUNCATE ON knowledge_base_reply
    FOR EACH STATEMENT EXECUTE FUNCTION kb_search_clear()""",
    """INSERT INTO kb_search (reply_id, shortcut, language, types, position, title_vector, vector)
    SELECT id, shortcut, language, search_types, position,
        to_tsvector('simple', search_title),
        setweight(to_tsvector('simple', search_title), 'A')
        || setweight(to_tsvector('simple', search_body), 'C')
    FROM knowledge_base_reply WHERE active AND retired_at IS NULL""",
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS kb_search_clear ON knowledge_base_reply",
    "DROP FUNCTION IF EXISTS kb_search_clear()",
    "DROP TRIGGER IF EXISTS kb_search_sync ON knowledge_base_reply",
    "DROP FUNCTION IF EXISTS kb_search_sync()",
    "DROP TABLE IF EXISTS kb_search",
]


def _previous() -> dict[str, list[str]]:
    """0002's statements for the structures this migration drops (to restore them)."""
    old = importlib.import_module("knowledge_base.migrations.0002_search_indexes")
    return {
        "sqlite": [s for s in old.SQLITE_FORWARD if "kb_term_trigram" not in s],
        "postgresql": [
            s
            for s in old.POSTGRES_FORWARD
            if "pg_trgm" not in s and "knowledge_base_term" not in s
        ],
    }


def forward(apps, schema_editor):
    statements = {"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}
    for sql in [*statements.get(vendor, []), *_previous().get(vendor, [])]:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("knowledge_base", "0002_search_indexes")]

    operations = [migrations.RunPython(forward, backward)]
