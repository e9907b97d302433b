"""The hsm scenarios on PostgreSQL (the suite's database), in process."""

from __future__ import annotations

import pytest
from django.db import connection

from hub.roles import Role
from tests.hsm import scenarios

pytestmark = pytest.mark.django_db


@pytest.fixture
def results(staff):
    return scenarios.run(staff("hsm-coord", Role.COORDINATOR))


def test_runs_on_postgresql():
    assert connection.vendor == "postgresql"


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_scenario_on_postgresql(results, name):
    scenarios.check(name, results[name])
