"""Browser tests: a real Chromium (Debian's package, driven by Playwright) against a real
daphne process on the embedded default (SQLite, in-memory channel layer) with the demo seeded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.support import running_demo_hub
from tests.harness import HubProcess


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A daphne process serving the seeded demo (operator1, operator2, coordinator, admin;
    password "demo") with three open conversations."""
    with running_demo_hub(tmp_path_factory.mktemp("browser-hub")) as hub:
        yield hub
