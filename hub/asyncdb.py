"""Running synchronous services from async consumers.

Channels' ``database_sync_to_async`` runs every call on one shared thread per process, which
serialises all database work.  On PostgreSQL we use a small pool instead (each thread keeps a
persistent connection, ``CONN_MAX_AGE``); on SQLite one thread, since writes are serialised
by the database anyway.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

from hub import doorbell
from hub.doorbell import Send

P = ParamSpec("P")
R = TypeVar("R")

_executor: ThreadPoolExecutor | None = None


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        default = 1 if connection.vendor == "sqlite" else 8
        size = int(os.environ.get("HUB_DB_THREADS", default))
        _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="hub-db")
    return _executor


def _in_db_thread(func: Callable[..., R], bucket: list[Send], *args: Any, **kwargs: Any) -> R:
    token = doorbell.collected.set(bucket)
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()
        doorbell.collected.reset(token)


async def run_db(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Await a synchronous (database-touching) call on the hub's database threads.

    Doorbells the call rings after its commits are sent from here, after it returns (even
    if it then raised): the database thread is free at once.
    """
    runner = sync_to_async(_in_db_thread, thread_sensitive=False, executor=_get_executor())
    bucket: list[Send] = []
    try:
        return await runner(func, bucket, *args, **kwargs)
    finally:
        if bucket:
            await doorbell.send_all(bucket)
