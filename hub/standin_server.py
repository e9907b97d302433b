"""Serving the stand-ins of external systems (the WhatsApp provider, the bank's back office)
on a loopback port: in tests (``async with app_served(app)``) and from their command lines
(``serve_until_signalled``).

Imports only aiohttp and the standard library: a stand-in plays a system outside the hub
and must run without Django.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def app_served(
    app: web.Application, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0 = a free port) for the ``async with`` block;
    yields its base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound_port}"
    finally:
        await runner.cleanup()


async def serve_until_signalled(app: web.Application, *, host: str, port: int, name: str) -> None:
    """Serve until SIGINT or SIGTERM, after printing one "``name`` on URL" line (what
    launchers and tests wait for)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with app_served(app, host=host, port=port) as url:
        print(f"{name} on {url}", flush=True)
        await stop.wait()
