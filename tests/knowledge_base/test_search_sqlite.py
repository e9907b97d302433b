"""Search on the embedded default: the scenarios run in a separate process on a freshly
migrated SQLite file (the real migrations, FTS5 tables and triggers), not on the suite's
PostgreSQL."""

from __future__ import annotations

import pytest

from tests.harness import sqlite_probe_results
from tests.knowledge_base import scenarios


@pytest.fixture(scope="module")
def sqlite_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return sqlite_probe_results(
        "tests.knowledge_base.sqlite_probe", tmp_path_factory.mktemp("kb-sqlite")
    )


@pytest.mark.parametrize("name", [q[0] for q in scenarios.QUERIES])
def test_search_scenario_on_sqlite(sqlite_results, name):
    scenarios.check(name, sqlite_results[name])


@pytest.mark.parametrize("name", [q[0] for q in scenarios.SYNC])
def test_search_follows_writes_on_sqlite(sqlite_results, name):
    scenarios.check(name, sqlite_results[name])
