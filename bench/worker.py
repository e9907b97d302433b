"""Bench infrastructure: run a bench module's ``--worker`` half in a child process.

A bench that times the ORM runs its measuring half as ``python -m <module> --worker`` in a
fresh process on a migrated database (so Django is set up against the database the parent
chose), and reads the figures from the last line the worker prints, as JSON.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.harness import PYTHON, ROOT, migrate


def run_worker(module: str, env: dict[str, str], *, what: str) -> dict[str, Any]:
    """Migrate the database ``env`` names, run ``module --worker`` on it (at most 30
    minutes) and return the JSON object of its last output line; a failed worker raises
    RuntimeError naming ``what`` with the end of its stderr."""
    migrate(env)
    proc = subprocess.run(
        [PYTHON, "-m", module, "--worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{what} bench worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
