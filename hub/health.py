"""Health selector: is the database reachable, and is the channel layer?"""

from __future__ import annotations

import time
import uuid
from typing import Any

from channels.layers import get_channel_layer
from django.db import connection


def database_health() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "down"; the reason is reported
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {
        "ok": True,
        "vendor": connection.vendor,
        "ms": round((time.perf_counter() - started) * 1000, 2),
    }


async def channel_layer_health(wait_seconds: float = 2.0) -> dict[str, Any]:
    """Send a message to a fresh channel and read it back."""
    import asyncio

    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "no channel layer configured"}
    started = time.perf_counter()
    try:
        channel = await asyncio.wait_for(layer.new_channel("healthz."), wait_seconds)
        token = uuid.uuid4().hex
        await asyncio.wait_for(layer.send(channel, {"type": "healthz", "t": token}), wait_seconds)
        received = await asyncio.wait_for(layer.receive(channel), wait_seconds)
        if received.get("t") != token:
            return {"ok": False, "error": "round trip returned another message"}
    except Exception as exc:  # any failure means "down"
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300] or "timeout"}
    return {
        "ok": True,
        "backend": type(layer).__name__,
        "ms": round((time.perf_counter() - started) * 1000, 2),
    }
