"""Template context (HTTP transport): flags every page template may read."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def hub_flags(request: HttpRequest) -> dict[str, bool]:
    """``hub_demo``: the demo is on (HUB_DEMO), so pages may show demo hints."""
    return {"hub_demo": bool(settings.HUB_DEMO)}
