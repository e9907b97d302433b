"""Knowledge base search: one query language, two database backends.

The query an operator types (``/card-bl``, ``tarjeta bloq``, ``tarjta``) is parsed once
(``query_parse``): an optional shortcut prefix, folded words (case and accents removed in
Python, the same way the services fold the replies when they save them), the last word
matched as a prefix while it is being typed.  Words that are not in the vocabulary
(``Term``) are widened with close vocabulary words (edit distance 1, or 2 from six
letters): that is the typo tolerance, the same on both databases.

Backends (chosen by the connection's vendor), each behind the same calls, search a narrow
table that holds only the live (active, not retired) replies, filled by database triggers
on the reply table (migration 0003), so nothing is filtered and only the returned replies'
rows are read:

* SQLite (embedded default): ``kb_search``, an FTS5 table over the folded title and body
  ranked with bm25 (title 4x body), beside ``kb_search_doc`` (shortcut, language, types,
  position); an FTS5 trigram table over the vocabulary for typo candidates.
* PostgreSQL: ``kb_search`` with a title ``tsvector`` and a weighted title-and-body
  ``tsvector`` (A and C), each with a GIN index, ``ts_rank``; pg_trgm's ``%`` over the
  vocabulary for typos.

Both order the matches the same way: the conversation's language, then its query type (a
reply for that type, then a reply for every type), then the replies whose title or
shortcut holds the query (*title tier*) before those that hold it only with their body,
then text rank, then the coordinators' position.  Shortcut-prefix matches come before
everything else.  Each tier's candidates are cut in the index before anything is ranked
(``TITLE_CANDIDATES``, ``BODY_CANDIDATES``), so a word that thousands of replies contain
costs the same as a rare one.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
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
# Candidates ranked at most per tier, taken in index order before any rank is computed:
# the work is bounded for a word that a large share of the replies contain ("card" in a
# bank's knowledge base).  A title holds a word far more rarely than a body, so the title
# tier is nearly always whole; the body tier ranks a sample of a very common word's
# matches, which only matters when fewer than ``limit`` titles hold it.
TITLE_CANDIDATES = 500
BODY_CANDIDATES = 200
# Shortcut-prefix matches ranked by context at most: the first in the coordinators' order.
SHORTCUT_CANDIDATES = 200


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """One character, lower case without its accent, still one character (so positions in
    the folded text are positions in the original: the snippet relies on it)."""
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return base if len(base) == 1 else char.lower()[:1] or char


class _FoldTable(dict[int, str]):
    """A ``str.translate`` table that folds each character the first time it is seen."""

    def __missing__(self, code: int) -> str:
        folded = self[code] = _fold_char(chr(code))
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """Lower case, accents removed, same length as ``text``."""
    if text.isascii():
        return text.lower()
    return text.translate(_FOLD)


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


@dataclass(frozen=True)
class Matches:
    """The hits of one search statement and, for each word it was asked to check (in the
    order of ``check``), None when the vocabulary holds it, else the vocabulary words that
    share trigrams with it (the typo candidates)."""

    hits: list[Hit]
    similar: tuple[list[str] | None, ...] = ()


class SearchBackend(Protocol):
    def match(
        self,
        terms: tuple[Term, ...],
        *,
        every: bool,
        context: Context | None,
        limit: int,
        check: Sequence[Term] = (),
    ) -> Matches: ...

    def shortcut_prefix(self, prefix: str, *, context: Context | None, limit: int) -> Matches: ...

    def index_rebuild(self) -> None: ...


def _context_columns(context: Context | None, instr: str) -> tuple[str, list[Any]]:
    """``lang_rank, type_rank`` of a candidate row ``c`` (0 is best): the conversation's
    language, then its query type (that type, then every type, then another)."""
    params: list[Any] = []
    language = "0"
    if context is not None and context.language:
        language = "CASE WHEN c.language = %s THEN 0 ELSE 1 END"
        params.append(context.language)
    query_type = "0"
    if context is not None and context.query_type_id is not None:
        query_type = (
            f"CASE WHEN {instr}(c.types, %s) > 0 THEN 0 WHEN c.types = '' THEN 1 ELSE 2 END"
        )
        params.append(f",{context.query_type_id},")
    return f"{language} AS lang_rank, {query_type} AS type_rank", params


@dataclass(frozen=True)
class _Statement:
    """One search statement: the vocabulary checks, then the ranked candidates.

    ``candidates`` is SQL yielding id, head (ranks before the context: an exact shortcut),
    tier (title match 0, body only 1), score, language, types, position.  Only the
    ``limit`` best are joined to the reply table.  The vocabulary checks ride along (one
    round trip, not two: on a busy PostgreSQL a round trip costs as much as the search):
    they are uncorrelated, so each database runs them once, the typo candidates only for
    a word that is not known, and the outer join keeps one row for them when nothing
    matches.
    """

    checks: list[tuple[str, list[Any]]]
    context: tuple[str, list[Any]]
    candidates: tuple[str, list[Any]]
    score_desc: bool

    def sql(self, limit: int) -> tuple[str, list[Any]]:
        direction = " DESC" if self.score_desc else ""
        known = "".join(f"{sql} AS k{i}, " for i, (sql, _) in enumerate(self.checks))
        text = (
            f"SELECT {known}b.id, r.title, r.shortcut, r.language, r.body, b.score"
            " FROM (SELECT 1 AS one) k LEFT JOIN ("
            f"  SELECT c.id, c.head, {self.context[0]}, c.tier, c.score, c.position"
            f"  FROM ({self.candidates[0]}) c"
            f"  ORDER BY c.head, lang_rank, type_rank, c.tier, c.score{direction},"
            "  c.position, c.id LIMIT %s"
            ") b ON 1 = 1 LEFT JOIN knowledge_base_reply r ON r.id = b.id"
            " ORDER BY b.head, b.lang_rank, b.type_rank, b.tier,"
            f" b.score{direction}, b.position, b.id"
        )
        params = [p for _, check_params in self.checks for p in check_params]
        params += [*self.context[1], *self.candidates[1], limit]
        return text, params

    def run(self, connection: BaseDatabaseWrapper, limit: int, score_sign: float) -> Matches:
        text, params = self.sql(limit)
        with connection.cursor() as cursor:
            cursor.execute(text, params)
            rows = cursor.fetchall()
        n = len(self.checks)
        similar = tuple(
            None if value is None else (value.split() if isinstance(value, str) else value)
            for value in rows[0][:n]
        )
        hits = [
            Hit(
                id=row[n],
                title=row[n + 1],
                shortcut=row[n + 2],
                language=row[n + 3],
                body=row[n + 4],
                score=(row[n + 5] or 0.0) * score_sign,
            )
            for row in rows
            if row[n + 1] is not None  # no candidate (the row of the checks alone)
        ]
        return Matches(hits=hits, similar=similar)


class SqliteBackend:
    """FTS5 table ``kb_search`` (live replies' folded title and body, unicode61) and the
    narrow ``kb_search_doc`` (shortcut, language, types, position), both by reply id."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection

    @staticmethod
    def _check(term: Term) -> tuple[str, list[Any]]:
        """NULL when the vocabulary holds the word (or, being typed, a word it begins),
        else the words sharing the most trigrams with it, space-separated."""
        if term.prefix:
            known = "word >= %s AND word < %s"
            params: list[Any] = [term.word, term.word + "\U0010ffff"]
        else:
            known, params = "word = %s", [term.word]
        grams = sorted({term.word[i : i + 3] for i in range(len(term.word) - 2)})
        sql = (
            f"CASE WHEN EXISTS (SELECT 1 FROM knowledge_base_term WHERE {known}) THEN NULL"
            " ELSE coalesce((SELECT group_concat(word, ' ') FROM (SELECT word"
            " FROM kb_term_trigram WHERE kb_term_trigram MATCH %s ORDER BY rank LIMIT %s)),"
            " '') END"
        )
        return sql, [*params, " OR ".join(f'"{g}"' for g in grams), FUZZY_CANDIDATES]

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
        self,
        terms: tuple[Term, ...],
        *,
        every: bool,
        context: Context | None,
        limit: int,
        check: Sequence[Term] = (),
    ) -> Matches:
        expression = self._expression(terms, every)
        in_title = f"{{title}} : ({expression})"
        # Each tier is cut by LIMIT before anything else is read: FTS5 yields matches in
        # rowid order and computes bm25 only for the rows taken.  The title tier repeats
        # the expression unfiltered so that bm25 also counts the body's occurrences.
        tier = (
            "SELECT * FROM (SELECT rowid AS id, {tier} AS tier,"
            " bm25(kb_search, 4.0, 1.0) AS score"
            " FROM kb_search WHERE kb_search MATCH %s LIMIT %s)"
        )
        candidates = (
            "SELECT m.id, 0 AS head, m.tier, m.score, d.language, d.types, d.position FROM ("
            f"{tier.format(tier=0)} UNION ALL {tier.format(tier=1)}"
            ") m JOIN kb_search_doc d ON d.id = m.id"
        )
        statement = _Statement(
            checks=[self._check(term) for term in check],
            context=_context_columns(context, "instr"),
            candidates=(
                candidates,
                [
                    f"({expression}) AND ({in_title})",
                    TITLE_CANDIDATES,
                    f"({expression}) NOT ({in_title})",
                    BODY_CANDIDATES,
                ],
            ),
            score_desc=False,
        )
        return statement.run(self.connection, limit, score_sign=-1.0)  # bm25: lower is better

    def shortcut_prefix(self, prefix: str, *, context: Context | None, limit: int) -> Matches:
        # "/" alone lists every reply: walk the position index rather than sort them all.
        where, range_params = "", []
        if prefix != "/":
            where = " WHERE shortcut >= %s AND shortcut < %s"
            range_params = [prefix, prefix + "\U0010ffff"]
        candidates = (
            "SELECT d.id, d.shortcut <> %s AS head, 0 AS tier, 0.0 AS score,"
            " d.language, d.types, d.position FROM ("
            f"  SELECT id FROM kb_search_doc{where} ORDER BY position LIMIT %s"
            ") p JOIN kb_search_doc d ON d.id = p.id"
        )
        statement = _Statement(
            checks=[],
            context=_context_columns(context, "instr"),
            candidates=(candidates, [prefix, *range_params, SHORTCUT_CANDIDATES]),
            score_desc=False,
        )
        return statement.run(self.connection, limit, score_sign=1.0)

    def index_rebuild(self) -> None:
        """Refill both tables from the reply table (the triggers keep them in sync; this
        is for repairs)."""
        with self.connection.cursor() as cursor:
            cursor.execute("DELETE FROM kb_search")
            cursor.execute("DELETE FROM kb_search_doc")
            cursor.execute(
                "INSERT INTO kb_search(rowid, title, body) "
                "SELECT id, search_title, search_body FROM knowledge_base_reply "
                "WHERE active AND retired_at IS NULL"
            )
            cursor.execute(
                "INSERT INTO kb_search_doc(id, shortcut, language, types, position) "
                "SELECT id, shortcut, language, search_types, position FROM knowledge_base_reply "
                "WHERE active AND retired_at IS NULL"
            )
            cursor.execute("INSERT INTO kb_search(kb_search) VALUES ('optimize')")


class PostgresBackend:
    """Table ``kb_search`` (live replies: title ``tsvector`` and weighted title-and-body
    ``tsvector``, each with GIN; shortcut, language, types, position); pg_trgm over the
    vocabulary for typos."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection

    @staticmethod
    def _check(term: Term) -> tuple[str, list[Any]]:
        """NULL when the vocabulary holds the word (or, being typed, a word it begins),
        else the array of the most similar words (pg_trgm)."""
        # Words are letters and digits only: nothing to escape in LIKE.
        known, value = ("LIKE", term.word + "%") if term.prefix else ("=", term.word)
        sql = (
            f"CASE WHEN EXISTS (SELECT 1 FROM knowledge_base_term WHERE word {known} %s)"
            " THEN NULL ELSE ARRAY(SELECT word FROM knowledge_base_term WHERE word %% %s"
            " ORDER BY word <-> %s LIMIT %s) END"
        )
        return sql, [value, term.word, term.word, FUZZY_CANDIDATES]

    @staticmethod
    def _expression(terms: tuple[Term, ...], every: bool) -> str:
        groups = []
        for term in terms:
            options = [term.word + (":*" if term.prefix else ""), *term.alternatives]
            groups.append("(" + " | ".join(options) + ")")
        return (" & " if every else " | ").join(groups)

    def match(
        self,
        terms: tuple[Term, ...],
        *,
        every: bool,
        context: Context | None,
        limit: int,
        check: Sequence[Term] = (),
    ) -> Matches:
        # Each tier is cut by LIMIT before ts_rank runs: the GIN index finds the rows,
        # the rank is computed only for the rows taken.
        candidates = (
            "(SELECT s.reply_id AS id, 0 AS head, 0 AS tier, ts_rank(s.vector, q) AS score,"
            "  s.language, s.types, s.position"
            "  FROM kb_search s, to_tsquery('simple', %s) q WHERE s.title_vector @@ q LIMIT %s)"
            " UNION ALL "
            "(SELECT s.reply_id, 0, 1, ts_rank(s.vector, q), s.language, s.types, s.position"
            "  FROM kb_search s, to_tsquery('simple', %s) q"
            "  WHERE s.vector @@ q AND NOT s.title_vector @@ q LIMIT %s)"
        )
        expression = self._expression(terms, every)
        statement = _Statement(
            checks=[self._check(term) for term in check],
            context=_context_columns(context, "strpos"),
            candidates=(
                candidates,
                [expression, TITLE_CANDIDATES, expression, BODY_CANDIDATES],
            ),
            score_desc=True,
        )
        return statement.run(self.connection, limit, score_sign=1.0)

    def shortcut_prefix(self, prefix: str, *, context: Context | None, limit: int) -> Matches:
        # "/" alone lists every reply: walk the position index rather than sort them all.
        where, like_params = "", []
        if prefix != "/":
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where, like_params = " WHERE shortcut LIKE %s", [escaped + "%"]
        candidates = (
            "SELECT reply_id AS id, (shortcut <> %s)::int AS head, 0 AS tier, 0.0 AS score,"
            f" language, types, position FROM kb_search{where} ORDER BY position LIMIT %s"
        )
        statement = _Statement(
            checks=[],
            context=_context_columns(context, "strpos"),
            candidates=(candidates, [prefix, *like_params, SHORTCUT_CANDIDATES]),
            score_desc=False,
        )
        return statement.run(self.connection, limit, score_sign=1.0)

    def index_rebuild(self) -> None:
        """Refill the table from the reply table (the triggers keep it in sync; this is
        for repairs)."""
        with self.connection.cursor() as cursor:
            cursor.execute("DELETE FROM kb_search")
            cursor.execute(
                "INSERT INTO kb_search"
                " (reply_id, shortcut, language, types, position, title_vector, vector)"
                " SELECT id, shortcut, language, search_types, position,"
                "  to_tsvector('simple', search_title),"
                "  setweight(to_tsvector('simple', search_title), 'A')"
                "  || setweight(to_tsvector('simple', search_body), 'C')"
                " FROM knowledge_base_reply WHERE active AND retired_at IS NULL"
            )


def search_backend(connection: BaseDatabaseWrapper | None = None) -> SearchBackend:
    connection = connection or default_connection
    if connection.vendor == "postgresql":
        return PostgresBackend(connection)
    if connection.vendor == "sqlite":
        return SqliteBackend(connection)
    raise NotImplementedError(f"No knowledge-base search for {connection.vendor}")


# --- the search --------------------------------------------------------------------------
def _widen(term: Term, candidates: list[str]) -> Term:
    """The term plus the vocabulary words within its edit limit, closest first."""
    limit = max_edits(term.word)
    scored = []
    for candidate in candidates:
        if term.prefix:  # still being typed: compare with the start of the candidate too
            distance = min(
                osa_distance(term.word, candidate),
                osa_distance(term.word, candidate[: len(term.word)]),
            )
        elif abs(len(candidate) - len(term.word)) > limit:
            continue  # each edit changes the length by one at most
        else:
            distance = osa_distance(term.word, candidate)
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
    (or, when nothing matches them all, of any word).

    The words are searched as typed and checked against the vocabulary in the same
    statement, which also brings the typo candidates of a word of 4+ letters that is not
    in it; only then is the search run again with that word widened (a word in no reply
    matches nothing, so the first statement costs little then)."""
    backend = search_backend(connection)
    hits: list[Hit] = []
    if parsed.shortcut_prefix:
        hits = backend.shortcut_prefix(parsed.shortcut_prefix, context=context, limit=limit).hits
        for hit in hits:
            hit.shortcut_fit = 1
    if parsed.terms and len(hits) < limit:
        terms = parsed.terms
        check = [term for term in terms if len(term.word) >= FUZZY_MIN_LENGTH]
        first = backend.match(terms, every=True, context=context, limit=limit, check=check)
        found = first.hits
        similar = {
            term: candidates
            for term, candidates in zip(check, first.similar, strict=True)
            if candidates is not None
        }
        if similar:
            terms = tuple(
                _widen(term, similar[term]) if term in similar else term for term in terms
            )
            if terms != parsed.terms:
                found = backend.match(terms, every=True, context=context, limit=limit).hits
        if not found and len(terms) > 1:
            found = backend.match(terms, every=False, context=context, limit=limit).hits
        seen = {hit.id for hit in hits}
        hits += [hit for hit in found if hit.id not in seen]
        for hit in hits:
            hit.extra["terms"] = terms
    return hits[:limit]


def index_rebuild(connection: BaseDatabaseWrapper | None = None) -> None:
    """Refill the search structures from the reply table (repairs; the triggers keep them
    in sync with every write)."""
    search_backend(connection).index_rebuild()


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
