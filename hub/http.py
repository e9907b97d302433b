"""The one aiohttp ClientSession of the process, for the external systems the hub calls:
the channels' provider APIs and the bank's back office (infrastructure).

A session owns a connection pool and belongs to the event loop it was created in, so it is
created lazily in the running loop on first use and reused by every send of that loop.  A
web process has one loop (daphne's), so one session; it is closed when the server shuts
down (a Twisted "before shutdown" trigger, as daphne does not speak ASGI lifespan) and at
interpreter exit otherwise.  A process that runs no server (``run_scheduler``) sends from
one private loop thread (``chat.channels.outbox``, ``backoffice_bridge.client``), each
with its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import weakref

import aiohttp

logger = logging.getLogger(__name__)

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)
_shutdown_hooked = False


def http_session() -> aiohttp.ClientSession:
    """The process's session for the running loop, created on first use."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, limit_per_host=50),
            # Per-request timeouts are the adapters'; this only bounds a forgotten one.
            timeout=aiohttp.ClientTimeout(total=120),
            raise_for_status=False,
        )
        _sessions[loop] = session
        _hook_server_shutdown()
    return session


async def http_session_close() -> None:
    """Close the running loop's session (shutdown, tests)."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None and not session.closed:
        await session.close()


def _hook_server_shutdown() -> None:
    """Under daphne, close the session before the reactor stops."""
    global _shutdown_hooked
    reactor = sys.modules.get("twisted.internet.reactor")
    if _shutdown_hooked or reactor is None or not getattr(reactor, "running", False):
        return
    from twisted.internet import defer

    def before_shutdown() -> defer.Deferred:
        return defer.Deferred.fromFuture(asyncio.ensure_future(_close_quietly()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
    _shutdown_hooked = True


async def _close_quietly() -> None:
    with contextlib.suppress(Exception):
        await http_session_close()
