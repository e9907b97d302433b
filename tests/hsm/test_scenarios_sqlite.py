"""The hsm scenarios on the embedded default: run in a separate process on a freshly
migrated SQLite file (the real migrations), not on the suite's PostgreSQL."""

from __future__ import annotations

import pytest

from tests.harness import sqlite_probe_results
from tests.hsm import scenarios


@pytest.fixture(scope="module")
def sqlite_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return sqlite_probe_results("tests.hsm.sqlite_probe", tmp_path_factory.mktemp("hsm-sqlite"))


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_scenario_on_sqlite(sqlite_results, name):
    scenarios.check(name, sqlite_results[name])
