"""Browser tests: a real Chromium (Debian's package, driven by Playwright) against a real
daphne process on the embedded default (SQLite, in-memory channel layer) with the demo seeded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import HubProcess, hub_env, manage, migrate


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A daphne process serving the seeded demo (operator1, operator2, coordinator, admin;
    password "demo") with three open conversations."""
    var_dir = tmp_path_factory.mktemp("browser-hub")
    env = hub_env(None, None, HUB_VAR_DIR=str(var_dir), HUB_DEMO="1")
    migrate(env)
    manage(env, "demo_seed")
    with HubProcess(env, log_dir=var_dir) as hub:
        yield hub
