"""The sign-in page shows the demo logins only when the demo is on (hub.context_processors)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("demo", [True, False])
def test_login_page_shows_demo_logins_only_in_demo_mode(client, settings, demo):
    settings.HUB_DEMO = demo
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert response.context["hub_demo"] is demo
    assert (b"Demo mode." in response.content) is demo
    assert (b"operator1" in response.content) is demo
