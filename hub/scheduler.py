"""Periodic jobs (infrastructure, beside the transports): a small runner of registered jobs.

A job is a name, an interval and a callable taking no arguments (or its dotted path, so
that registering one imports nothing).  Registering is one call, from this module or an
app's ``AppConfig.ready()``::

    job_register("routing.tick", every=15, func="routing.absence.routing_tick")

Jobs are services: each must be safe to run from several schedulers at once (they lock what
they change with ``SKIP LOCKED``), so running two schedulers is redundancy, never double
work.  The runner is used two ways:

* ``python manage.py run_scheduler`` (``Procfile``: ``scheduler:``), a process of its own,
  on any shape; SIGTERM or SIGINT stop it after the job in progress.  ``--once`` runs every
  job once and exits (cron, tests).
* Inside the web process on the embedded default only (SQLite: one process, and an
  in-memory channel layer, so doorbells rung anywhere else would never reach its
  consoles): ``InProcessScheduler`` wraps the ASGI application and starts the loop on the
  first connection, because daphne does not speak the ASGI lifespan protocol.  Jobs run
  on the database thread through ``hub.asyncdb.run_db``, which rings their doorbells.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _seconds(name: str, default: float) -> float:
    """An interval from the environment (settings.py is not the place for per-job knobs:
    each job owns its own)."""
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class Job:
    name: str
    every: float
    func: Callable[[], object] | str

    def resolve(self) -> Callable[[], object]:
        if callable(self.func):
            return self.func
        module, _, attribute = self.func.rpartition(".")
        return getattr(importlib.import_module(module), attribute)

    def __call__(self) -> object:
        return self.resolve()()


_jobs: dict[str, Job] = {}


def job_register(name: str, *, every: float, func: Callable[[], object] | str) -> Job:
    """Register a periodic job (registering a name again replaces it)."""
    if every <= 0:
        raise ValueError(f"job {name!r}: the interval must be positive, not {every}")
    job = Job(name=name, every=float(every), func=func)
    _jobs[name] = job
    return job


def jobs_registered() -> list[Job]:
    return list(_jobs.values())


# The hub's jobs.  Later issues add theirs here or from their AppConfig.ready().
job_register(
    "routing.tick",
    every=_seconds("HUB_ROUTING_TICK_SECONDS", 15.0),
    func="routing.absence.routing_tick",
)


def _refresh_connections() -> None:
    """As around a request: drop connections that broke or aged out between runs, so a
    database restart costs one failed run, not every run after it.  A connection inside
    a transaction someone else opened (a caller's, a test's) is left alone."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


class Scheduler:
    """Runs jobs at their intervals.  Every job is due at start, then ``every`` seconds
    after its previous run *started* (a run longer than the interval is followed at once
    by the next, never by a pile-up).  A job that raises is logged; the others go on."""

    def __init__(
        self,
        jobs: Iterable[Job] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jobs = list(jobs) if jobs is not None else jobs_registered()
        self.clock = clock
        start = clock()
        self._due_at = {job.name: start for job in self.jobs}

    def due(self) -> list[Job]:
        now = self.clock()
        return [job for job in self.jobs if self._due_at[job.name] <= now]

    def delay(self) -> float:
        """Seconds until the next job is due (0 when one already is)."""
        if not self.jobs:
            return 3600.0
        return max(0.0, min(self._due_at.values()) - self.clock())

    def _ran(self, job: Job, started: float) -> None:
        self._due_at[job.name] = started + job.every

    def _report(self, job: Job, result: object) -> None:
        if result:
            logger.info("job %s: %s", job.name, result)
        else:
            logger.debug("job %s: nothing to do", job.name)

    # --- in its own process ---------------------------------------------------------
    def run_sync(self, job: Job) -> bool:
        """Run one job on this thread; False if it raised (logged)."""
        started = self.clock()
        _refresh_connections()
        try:
            self._report(job, job())
            return True
        except Exception:  # the runner's boundary: one job's failure stops nothing
            logger.exception("job %s failed", job.name)
            return False
        finally:
            _refresh_connections()
            self._ran(job, started)

    def run_all_sync(self) -> dict[str, bool]:
        """Every job once, now (``run_scheduler --once``)."""
        return {job.name: self.run_sync(job) for job in self.jobs}

    def serve_sync(self, stop: threading.Event) -> None:
        """Run due jobs until ``stop`` is set; the job in progress is finished first."""
        logger.info("scheduler started: %s", ", ".join(f"{j.name}/{j.every:g}s" for j in self.jobs))
        while not stop.is_set():
            for job in self.due():
                if stop.is_set():
                    break
                self.run_sync(job)
            stop.wait(self.delay())
        logger.info("scheduler stopped")

    # --- inside the web process (embedded default) ------------------------------------
    async def run_async(self, job: Job) -> bool:
        """Run one job on the hub's database thread; False if it raised (logged)."""
        from hub.asyncdb import run_db

        started = self.clock()
        try:
            self._report(job, await run_db(job))
            return True
        except Exception:  # the runner's boundary: one job's failure stops nothing
            logger.exception("job %s failed", job.name)
            return False
        finally:
            self._ran(job, started)

    async def serve_async(self, stop: asyncio.Event) -> None:
        """Run due jobs until ``stop`` is set; the job in progress is finished first."""
        logger.info(
            "in-process scheduler started: %s",
            ", ".join(f"{j.name}/{j.every:g}s" for j in self.jobs),
        )
        while not stop.is_set():
            for job in self.due():
                if stop.is_set():
                    break
                await self.run_async(job)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.delay())
        logger.info("in-process scheduler stopped")


def in_process_wanted() -> bool:
    """The embedded default (SQLite) runs the scheduler inside its one web process unless
    ``HUB_SCHEDULER_IN_PROCESS=0``; the scale-out shape runs ``run_scheduler`` processes."""
    from django.db import connection

    if os.environ.get("HUB_SCHEDULER_IN_PROCESS", "1").strip().lower() in {"0", "false", "no"}:
        return False
    return connection.vendor == "sqlite"


class InProcessScheduler:
    """ASGI wrapper starting a ``Scheduler`` on the first connection the process handles.

    daphne does not implement the ASGI lifespan protocol, so the first HTTP request or
    WebSocket starts the loop on the server's event loop; under a server that does
    (uvicorn, hypercorn) lifespan startup and shutdown start and stop it.  Under daphne the
    stop is hooked to Twisted's shutdown (SIGTERM, SIGINT): the job in progress finishes
    before the process exits.
    """

    def __init__(
        self, app: ASGIApp, *, scheduler_factory: Callable[[], Scheduler] = Scheduler
    ) -> None:
        self.app = app
        self.scheduler_factory = scheduler_factory
        self._task: asyncio.Task | None = None
        self._stop: asyncio.Event | None = None
        self._shutdown_hooked = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        self.start()
        await self.app(scope, receive, send)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop on the running event loop, once (again if it ended)."""
        loop = asyncio.get_running_loop()
        if self.running and self._task.get_loop() is loop:  # type: ignore[union-attr]
            return
        self._stop = asyncio.Event()
        self._task = loop.create_task(
            self.scheduler_factory().serve_async(self._stop), name="hub-scheduler"
        )
        self._hook_daphne_shutdown()

    async def stop(self) -> None:
        """Ask the loop to stop and wait for the job in progress."""
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _hook_daphne_shutdown(self) -> None:
        reactor = sys.modules.get("twisted.internet.reactor")
        if self._shutdown_hooked or reactor is None or not getattr(reactor, "running", False):
            return
        from twisted.internet import defer

        def before_shutdown() -> defer.Deferred:
            return defer.Deferred.fromFuture(asyncio.ensure_future(self.stop()))

        reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
        self._shutdown_hooked = True

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
