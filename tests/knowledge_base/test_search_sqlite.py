"""Search on the embedded default: the scenarios run in a separate process on a freshly
migrated SQLite file (the real migrations, FTS5 tables and triggers), not on the suite's
PostgreSQL."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.harness import PYTHON, ROOT, hub_env, migrate
from tests.knowledge_base import scenarios


@pytest.fixture(scope="module")
def sqlite_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    var_dir = tmp_path_factory.mktemp("kb-sqlite")
    env = hub_env(None, None, HUB_VAR_DIR=str(var_dir))
    migrate(env)
    proc = subprocess.run(
        [PYTHON, "-m", "tests.knowledge_base.sqlite_probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = json.loads(proc.stdout.strip().splitlines()[-1])
    assert output["vendor"] == "sqlite"
    return output["results"]


@pytest.mark.parametrize("name", [q[0] for q in scenarios.QUERIES])
def test_search_scenario_on_sqlite(sqlite_results, name):
    scenarios.check(name, sqlite_results[name])


@pytest.mark.parametrize("name", [q[0] for q in scenarios.SYNC])
def test_search_follows_writes_on_sqlite(sqlite_results, name):
    scenarios.check(name, sqlite_results[name])
