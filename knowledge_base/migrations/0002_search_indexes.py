"""Full-text search structures outside the ORM, per database (see knowledge_base/search.py).

SQLite: an FTS5 table over the replies' folded title and body (external content, so the text
is stored once) and an FTS5 trigram table over the vocabulary, both kept in sync by triggers.
PostgreSQL: pg_trgm, a ``search_vector`` tsvector column filled by a trigger, GIN indexes, and
``text_pattern_ops`` indexes for prefix matches on shortcuts and words.
"""

from django.db import migrations

SQLITE_FORWARD = [
    """CREATE VIRTUAL TABLE kb_reply_fts USING fts5(
        search_title, search_body,
        content='knowledge_base_reply', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2', prefix='2 3')""",
    """CREATE TRIGGER kb_reply_fts_ai AFTER INSERT ON knowledge_base_reply BEGIN
        INSERT INTO kb_reply_fts(rowid, search_title, search_body)
        VALUES (new.id, new.search_title, new.search_body);
    END""",
    """CREATE TRIGGER kb_reply_fts_ad AFTER DELETE ON knowledge_base_reply BEGIN
        INSERT INTO kb_reply_fts(kb_reply_fts, rowid, search_title, search_body)
        VALUES ('delete', old.id, old.search_title, old.search_body);
    END""",
    """CREATE TRIGGER kb_reply_fts_au AFTER UPDATE OF search_title, search_body
    ON knowledge_base_reply BEGIN
        INSERT INTO kb_reply_fts(kb_reply_fts, rowid, search_title, search_body)
        VALUES ('delete', old.id, old.search_title, old.search_body);
        INSERT INTO kb_reply_fts(rowid, search_title, search_body)
        VALUES (new.id, new.search_title, new.search_body);
    END""",
    """CREATE VIRTUAL TABLE kb_term_trigram USING fts5(
        word, content='knowledge_base_term', content_rowid='id', tokenize='trigram')""",
    """CREATE TRIGGER kb_term_trigram_ai AFTER INSERT ON knowledge_base_term BEGIN
        INSERT INTO kb_term_trigram(rowid, word) VALUES (new.id, new.word);
    END""",
    """CREATE TRIGGER kb_term_trigram_ad AFTER DELETE ON knowledge_base_term BEGIN
        INSERT INTO kb_term_trigram(kb_term_trigram, rowid, word)
        VALUES ('delete', old.id, old.word);
    END""",
    "INSERT INTO kb_reply_fts(kb_reply_fts) VALUES ('rebuild')",
    "INSERT INTO kb_term_trigram(kb_term_trigram) VALUES ('rebuild')",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS kb_term_trigram_ad",
    "DROP TRIGGER IF EXISTS kb_term_trigram_ai",
    "DROP TABLE IF EXISTS kb_term_trigram",
    "DROP TRIGGER IF EXISTS kb_reply_fts_au",
    "DROP TRIGGER IF EXISTS kb_reply_fts_ad",
    "DROP TRIGGER IF EXISTS kb_reply_fts_ai",
    "DROP TABLE IF EXISTS kb_reply_fts",
]

POSTGRES_FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "ALTER TABLE knowledge_base_reply ADD COLUMN search_vector tsvector",
    """CREATE FUNCTION knowledge_base_reply_vector() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector :=
            setweight(to_tsvector('simple', coalesce(NEW.search_title, '')), 'A')
            || setweight(to_tsvector('simple', coalesce(NEW.search_body, '')), 'C');
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER knowledge_base_reply_vector
    BEFORE INSERT OR UPDATE OF search_title, search_body ON knowledge_base_reply
    FOR EACH ROW EXECUTE FUNCTION knowledge_base_reply_vector()""",
    "UPDATE knowledge_base_reply SET search_title = search_title",
    # fastupdate off: replies change rarely, and a pending list makes every search scan it.
    """CREATE INDEX kb_reply_vector_gin ON knowledge_base_reply USING GIN (search_vector)
    WITH (fastupdate = off)""",
    """CREATE INDEX kb_reply_shortcut_prefix ON knowledge_base_reply
    (shortcut varchar_pattern_ops) WHERE retired_at IS NULL""",
    """CREATE INDEX kb_term_word_trgm ON knowledge_base_term USING GIN (word gin_trgm_ops)
    WITH (fastupdate = off)""",
    "CREATE INDEX kb_term_word_prefix ON knowledge_base_term (word varchar_pattern_ops)",
]
POSTGRES_BACKWARD = [
    "DROP INDEX IF EXISTS kb_term_word_prefix",
    "DROP INDEX IF EXISTS kb_term_word_trgm",
    "DROP INDEX IF EXISTS kb_reply_shortcut_prefix",
    "DROP INDEX IF EXISTS kb_reply_vector_gin",
    "DROP TRIGGER IF EXISTS knowledge_base_reply_vector ON knowledge_base_reply",
    "DROP FUNCTION IF EXISTS knowledge_base_reply_vector()",
    "ALTER TABLE knowledge_base_reply DROP COLUMN IF EXISTS search_vector",
]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("knowledge_base", "0001_reply")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}),
            _run({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}),
        )
    ]
