"""Knowledge base search: one query language, two database backends.

The query an operator types (``/card-bl``, ``tarjeta bloq``, ``tarjta``) is parsed once
(``query_parse``): an optional shortcut prefix, folded words (case and accents removed in
Python, the same way the services fold the replies when they save them), the last word
matched as a prefix while it is being typed.  Words that are not in the vocabulary
(``Term``) are widened with close vocabulary words (edit distance 1, or 2 from six
letters): that is the typo tolerance, the same on both databases.

Backends (chosen by the connection's vendor), each behind the same three calls:

* SQLite (embedded default): an FTS5 table over the folded title and body (external
  content, kept in sync by triggers) ranked with bm25, and an FTS5 trigram table over the
  vocabulary for typo candidates.
* PostgreSQL: a ``tsvector`` column (weights A title and shortcut, C body) maintained by a
  trigger, a GIN index, ``ts_rank``; pg_trgm's ``%`` over the vocabulary for typos.

Both order the matches the same way: the conversation's language, then its query type (a
reply for that type, then a reply for every type), then text rank, then the coordinators'
position.  Shortcut-prefix matches come before everything else.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper

_WORD = re.compile(r"[^\W_]+")
# Typo correction: only for words this long (shorter ones are ambiguous), with at most
# this many candidates from the vocabulary.
FUZZY_MIN_LENGTH = 4
FUZZY_CANDIDATES = 30
MAX_ALTERNATIVES = 3
# The longest query considered (characters and words): the rest is ignored.
MAX_QUERY_CHARS = 200
MAX_QUERY_WORDS = 8
# The word being typed matches as a prefix from this length (a shorter prefix matches most
# of the knowledge base and ranks thousands of rows for nothing useful).
MIN_PREFIX = 3
# Matches ranked by context (language, query type) at most: the best by text rank.  Bounds
# the work for a word that a large share of the replies contain ("card" in a bank's
# knowledge base), at the price of context-ranking only among these.
CANDIDATES = 200


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """One character, lower case without its accent, still one character (so positions in
    the folded text are positions in the original: the snippet relies on it)."""
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return base if len(base) == 1 else char.lower()[:1] or char


def fold(text: str) -> str:
    """Lower case, accents removed, same length as ``text``."""
    if text.isascii():
        return text.lower()
    return "".join(_fold_char(c) for c in text)


def words(text: str) -> list[str]:
    """The folded words of a text: what the index holds and what a query is made of."""
    return _WORD.findall(fold(text))


def shortcut_words(shortcut: str) -> list[str]:
    return words(shortcut.replace("-", " ").replace("_", " "))


def index_columns(*, title: str, shortcut: str, body: str) -> dict[str, str]:
    """The derived search columns of a reply (the services store them on every save)."""
    return {
        "search_title": " ".join([*words(title), *shortcut_words(shortcut)]),
        "search_body": " ".join(words(body)),
    }


def types_key(query_type_ids: Iterable[int]) -> str:
    """``,3,7,`` for types 3 and 7; empty for a reply of every type."""
    ids = sorted(set(query_type_ids))
    return "," + ",".join(str(i) for i in ids) + "," if ids else ""


def osa_distance(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit (optimal string
    alignment): "tarjeta" → "tarejta" is one typo, not two."""
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def max_edits(word: str) -> int:
    return 1 if len(word) <= 5 else 2


# --- the query ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """One word of the query and the vocabulary words also accepted in its place."""

    word: str
    prefix: bool = False
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedQuery:
    shortcut_prefix: str | None
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class Context:
    """What the conversation being answered prefers (None: no preference)."""

    language: str | None = None
    query_type_id: int | None = None


def query_parse(query: str) -> ParsedQuery:
    """``/card-bl tarj`` → shortcut prefix ``/card-bl``; words card, bl, tarj (the last one
    a prefix while the operator is still typing it, i.e. no trailing space)."""
    query = query[:MAX_QUERY_CHARS]
    stripped = query.strip()
    shortcut_prefix = None
    rest = stripped
    found: list[str] = []
    if stripped.startswith("/"):
        head, _, rest = stripped.partition(" ")
        shortcut_prefix = "/" + "-".join(shortcut_words(head[1:])) if head != "/" else "/"
        if head.endswith("-"):
            shortcut_prefix += "-"
        found += shortcut_words(head[1:])
    found += words(rest)
    found = found[:MAX_QUERY_WORDS]
    typing = bool(query) and not query[-1].isspace()
    terms = tuple(
        Term(word=w, prefix=typing and index == len(found) - 1 and len(w) >= MIN_PREFIX)
        for index, w in enumerate(found)
    )
    return ParsedQuery(shortcut_prefix=shortcut_prefix, terms=terms)


# --- backends --------------------------------------------------------------------------
@dataclass
class Hit:
    id: int
    title: str
    shortcut: str
    language: str
    body: str
    score: float = 0.0
    shortcut_fit: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class SearchBackend(Protocol):
    def known(self, word: str, *, prefix: bool) -> bool: ...

    def similar(self, word: str) -> list[str]: ...

    def match(
        self, terms: tuple[Term, ...], *, every: bool, context: Context | None, limit: int
    ) -> list[Hit]: ...

    def shortcut_prefix(self, prefix: str, *, context: Context | None, limit: int) -> list[Hit]: ...


_COLUMNS = "r.id, r.title, r.shortcut, r.language, r.body"


def _context_sql(context: Context | None, instr: str) -> tuple[str, list[Any]]:
    """The ORDER BY head that puts the conversation's language, then its type, first."""
    if context is None:
        return "", []
    parts: list[str] = []
    params: list[Any] = []
    if context.language:
        parts.append("CASE WHEN r.language = %s THEN 0 ELSE 1 END")
        params.append(context.language)
    if context.query_type_id is not None:
        parts.append(
            f"CASE WHEN {instr}(r.search_types, %s) > 0 THEN 0 "
            "WHEN r.search_types = '' THEN 1 ELSE 2 END"
        )
        params.append(f",{context.query_type_id},")
    return "".join(p + ", " for p in parts), params


def _rows(cursor: Any, score_sign: float = 1.0) -> list[Hit]:
    return [
        Hit(
            id=row[0],
            title=row[1],
            shortcut=row[2],
            language=row[3],
            body=row[4],
            score=(row[5] or 0.0) * score_sign,
        )
        for row in cursor.fetchall()
    ]


class SqliteBackend:
    """FTS5 (external content over the reply table, unicode61 without diacritics)."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection

    def known(self, word: str, *, prefix: bool) -> bool:
        with self.connection.cursor() as cursor:
            if prefix:
                cursor.execute(
                    "SELECT 1 FROM knowledge_base_term WHERE word >= %s AND word < %s LIMIT 1",
                    [word, word + "\U0010ffff"],
                )
            else:
                cursor.execute("SELECT 1 FROM knowledge_base_term WHERE word = %s", [word])
            return cursor.fetchone() is not None

    def similar(self, word: str) -> list[str]:
        grams = {word[i : i + 3] for i in range(len(word) - 2)}
        if not grams:
            return []
        expression = " OR ".join(f'"{g}"' for g in sorted(grams))
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT word FROM kb_term_trigram WHERE kb_term_trigram MATCH %s "
                "ORDER BY rank LIMIT %s",
                [expression, FUZZY_CANDIDATES],
            )
            return [row[0] for row in cursor.fetchall()]

    @staticmethod
    def _expression(terms: tuple[Term, ...], every: bool) -> str:
        def one(word: str, prefix: bool) -> str:
            return f'"{word}"' + ("*" if prefix else "")

        groups = []
        for term in terms:
            options = [one(term.word, term.prefix), *(one(a, False) for a in term.alternatives)]
            groups.append("(" + " OR ".join(options) + ")")
        return (" AND " if every else " OR ").join(groups)

    def match(
        self, terms: tuple[Term, ...], *, every: bool, context: Context | None, limit: int
    ) -> list[Hit]:
        head, params = _context_sql(context, "instr")
        # The inner query keeps the best CANDIDATES live matches by bm25 (computed by FTS5
        # itself); the outer one puts the conversation's language and type first.
        sql = (
            f"SELECT {_COLUMNS}, f.score FROM ("
            "  SELECT m.id, m.score FROM ("
            "    SELECT rowid AS id, bm25(kb_reply_fts, 4.0, 1.0) AS score"
            "    FROM kb_reply_fts WHERE kb_reply_fts MATCH %s"
            "  ) m JOIN knowledge_base_reply x ON x.id = m.id"
            "  WHERE x.active AND x.retired_at IS NULL ORDER BY m.score LIMIT %s"
            ") f JOIN knowledge_base_reply r ON r.id = f.id "
            f"ORDER BY {head}f.score, r.position, r.id LIMIT %s"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [self._expression(terms, every), CANDIDATES, *params, limit])
            return _rows(cursor, score_sign=-1.0)  # bm25: lower is better

    def shortcut_prefix(self, prefix: str, *, context: Context | None, limit: int) -> list[Hit]:
        head, params = _context_sql(context, "instr")
        sql = (
            f"SELECT {_COLUMNS}, 0.0 FROM knowledge_base_reply r WHERE r.id IN ("
            "  SELECT id FROM knowledge_base_reply WHERE shortcut >= %s AND shortcut < %s"
            "  AND active AND retired_at IS NULL ORDER BY position LIMIT %s"
            f") ORDER BY r.shortcut = %s DESC, {head}r.position, r.id LIMIT %s"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [prefix, prefix + "\U0010ffff", CANDIDATES, prefix, *params, limit])
            return _rows(cursor)


class PostgresBackend:
    """tsvector column + GIN (full text), pg_trgm over the vocabulary (typos)."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection

    def known(self, word: str, *, prefix: bool) -> bool:
        with self.connection.cursor() as cursor:
            if prefix:  # words are letters and digits only: nothing to escape in LIKE
                cursor.execute(
                    "SELECT 1 FROM knowledge_base_term WHERE word LIKE %s LIMIT 1", [word + "%"]
                )
            else:
                cursor.execute("SELECT 1 FROM knowledge_base_term WHERE word = %s", [word])
            return cursor.fetchone() is not None

    def similar(self, word: str) -> list[str]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT word FROM knowledge_base_term WHERE word %% %s "
                "ORDER BY word <-> %s LIMIT %s",
                [word, word, FUZZY_CANDIDATES],
            )
            return [row[0] for row in cursor.fetchall()]

    @staticmethod
    def _expression(terms: tuple[Term, ...], every: bool) -> str:
        groups = []
        for term in terms:
            options = [term.word + (":*" if term.prefix else ""), *term.alternatives]
            groups.append("(" + " | ".join(options) + ")")
        return (" & " if every else " | ").join(groups)

    def match(
        self, terms: tuple[Term, ...], *, every: bool, context: Context | None, limit: int
    ) -> list[Hit]:
        head, params = _context_sql(context, "strpos")
        sql = (
            f"SELECT {_COLUMNS}, f.score FROM ("
            "  SELECT x.id, ts_rank(x.search_vector, q) AS score"
            "  FROM knowledge_base_reply x, to_tsquery('simple', %s) q"
            "  WHERE x.search_vector @@ q AND x.active AND x.retired_at IS NULL"
            "  ORDER BY score DESC LIMIT %s"
            ") f JOIN knowledge_base_reply r ON r.id = f.id "
            f"ORDER BY {head}f.score DESC, r.position, r.id LIMIT %s"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [self._expression(terms, every), CANDIDATES, *params, limit])
            return _rows(cursor)

    def shortcut_prefix(self, prefix: str, *, context: Context | None, limit: int) -> list[Hit]:
        head, params = _context_sql(context, "strpos")
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql = (
            f"SELECT {_COLUMNS}, 0.0 FROM knowledge_base_reply r WHERE r.id IN ("
            "  SELECT id FROM knowledge_base_reply WHERE shortcut LIKE %s"
            "  AND active AND retired_at IS NULL ORDER BY position LIMIT %s"
            f") ORDER BY r.shortcut = %s DESC, {head}r.position, r.id LIMIT %s"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [escaped + "%", CANDIDATES, prefix, *params, limit])
            return _rows(cursor)


def search_backend(connection: BaseDatabaseWrapper | None = None) -> SearchBackend:
    connection = connection or default_connection
    if connection.vendor == "postgresql":
        return PostgresBackend(connection)
    if connection.vendor == "sqlite":
        return SqliteBackend(connection)
    raise NotImplementedError(f"No knowledge-base search for {connection.vendor}")


# --- the search --------------------------------------------------------------------------
def _widen(backend: SearchBackend, term: Term) -> Term:
    """The term plus close vocabulary words when the term itself is not in it."""
    if len(term.word) < FUZZY_MIN_LENGTH or backend.known(term.word, prefix=term.prefix):
        return term
    limit = max_edits(term.word)
    scored = []
    for candidate in backend.similar(term.word):
        distance = osa_distance(term.word, candidate)
        if term.prefix:  # still being typed: compare with the start of the candidate too
            distance = min(distance, osa_distance(term.word, candidate[: len(term.word)]))
        if distance <= limit and candidate != term.word:
            scored.append((distance, candidate))
    scored.sort()
    alternatives = tuple(word for _, word in scored[:MAX_ALTERNATIVES])
    return Term(word=term.word, prefix=term.prefix, alternatives=alternatives)


def search(
    parsed: ParsedQuery,
    *,
    context: Context | None,
    limit: int,
    connection: BaseDatabaseWrapper | None = None,
) -> list[Hit]:
    """Ranked hits: shortcut-prefix matches first, then full-text matches of every word
    (or, when nothing matches them all, of any word)."""
    backend = search_backend(connection)
    hits: list[Hit] = []
    if parsed.shortcut_prefix:
        hits = backend.shortcut_prefix(parsed.shortcut_prefix, context=context, limit=limit)
        for hit in hits:
            hit.shortcut_fit = 1
    if parsed.terms and len(hits) < limit:
        terms = tuple(_widen(backend, term) for term in parsed.terms)
        seen = {hit.id for hit in hits}
        found = backend.match(terms, every=True, context=context, limit=limit)
        if not found and len(terms) > 1:
            found = backend.match(terms, every=False, context=context, limit=limit)
        hits += [hit for hit in found if hit.id not in seen]
        for hit in hits:
            hit.extra["terms"] = terms
    return hits[:limit]


def snippet(body: str, terms: Iterable[Term], width: int = 120) -> str:
    """A plain-text excerpt of ``body`` around the first word the query matched."""
    text = " ".join(body.split())
    folded = fold(text)
    start = len(text)
    for term in terms:
        for word in (term.word, *term.alternatives):
            pattern = rf"(?<![^\W_]){re.escape(word)}" + ("" if term.prefix else r"(?![^\W_])")
            found = re.search(pattern, folded)
            if found and found.start() < start:
                start = found.start()
    if start == len(text) or start < width // 3 or len(text) <= width:
        start = 0
    else:
        start = text.rfind(" ", 0, start - width // 3) + 1
    excerpt = text[start : start + width]
    if start + width < len(text):
        excerpt = excerpt[: excerpt.rfind(" ")] if " " in excerpt else excerpt
        excerpt += "…"
    return ("…" if start > 0 else "") + excerpt
