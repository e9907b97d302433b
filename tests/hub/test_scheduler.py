"""hub.scheduler: registration, the runner's timing with a fake clock, failure isolation,
the in-process wrapper (first connection, lifespan), and ``manage.py run_scheduler``
(``--once``, and a real process stopped by SIGTERM)."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from hub import scheduler
from hub.roles import Role
from hub.scheduler import InProcessScheduler, Job, Scheduler, job_register, jobs_registered
from routing.models import OperatorState

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry(monkeypatch):
    """An isolated job registry (the hub's own jobs restored afterwards)."""
    monkeypatch.setattr(scheduler, "_jobs", dict(scheduler._jobs))
    return scheduler._jobs


# --- registration --------------------------------------------------------------------------
def test_routing_tick_is_registered_by_default():
    (job,) = [j for j in jobs_registered() if j.name == "routing.tick"]
    assert job.every == float(os.environ.get("HUB_ROUTING_TICK_SECONDS") or 15)
    from routing.absence import routing_tick

    assert job.resolve() is routing_tick


def test_registering_is_one_call_and_a_name_again_replaces(registry):
    calls: list[str] = []
    job_register("test.job", every=5, func=lambda: calls.append("first"))
    job_register("test.job", every=7, func=lambda: calls.append("second"))
    jobs = [j for j in jobs_registered() if j.name == "test.job"]
    assert [j.every for j in jobs] == [7.0]
    jobs[0]()
    assert calls == ["second"]
    with pytest.raises(ValueError):
        job_register("test.bad", every=0, func=lambda: None)


# --- timing and failures ---------------------------------------------------------------------
def test_every_job_is_due_at_start_then_after_its_interval():
    clock = FakeClock()
    ran: list[str] = []
    fast = Job("fast", 10, lambda: ran.append("fast"))
    slow = Job("slow", 60, lambda: ran.append("slow"))
    runner = Scheduler([fast, slow], clock=clock)
    assert runner.due() == [fast, slow]
    runner.run_all_sync()
    assert ran == ["fast", "slow"]
    assert runner.due() == []
    assert runner.delay() == 10
    clock.now += 10
    assert runner.due() == [fast]
    runner.run_sync(fast)
    clock.now += 55
    assert runner.due() == [fast, slow]
    clock.now += 1000  # a stall never piles up runs: each job is simply due once
    assert runner.due() == [fast, slow]


def test_a_failing_job_is_logged_and_the_others_run(caplog):
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    runner = Scheduler([Job("broken", 1, broken), Job("fine", 1, lambda: ran.append("x"))])
    assert runner.run_all_sync() == {"broken": False, "fine": True}
    assert ran == ["x"]
    assert "job broken failed" in caplog.text
    assert runner.due() == []  # a failed job waits its interval too


def test_serve_sync_runs_due_jobs_until_stopped():
    stop = threading.Event()
    ran: list[str] = []

    def last() -> None:
        ran.append("last")
        stop.set()

    runner = Scheduler([Job("first", 60, lambda: ran.append("first")), Job("last", 60, last)])
    runner.serve_sync(stop)  # returns: the second job asked to stop
    assert ran == ["first", "last"]


async def test_serve_async_runs_jobs_on_the_database_threads_until_stopped():
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    clock = FakeClock()
    threads: list[str] = []

    def job() -> None:
        threads.append(threading.current_thread().name)
        clock.now += 60  # the interval has passed: due again at once
        if len(threads) == 2:
            loop.call_soon_threadsafe(stop.set)

    runner = Scheduler([Job("job", 60, job)], clock=clock)
    await asyncio.wait_for(runner.serve_async(stop), timeout=10)
    assert len(threads) == 2
    assert all(name.startswith("hub-db") for name in threads)


# --- in the web process ---------------------------------------------------------------------
class _Recorder:
    """A scheduler whose loop just waits for stop, counting starts."""

    started = 0

    def __init__(self) -> None:
        type(self).started += 1

    async def serve_async(self, stop: asyncio.Event) -> None:
        await stop.wait()


async def test_in_process_scheduler_starts_on_the_first_connection_only():
    _Recorder.started = 0
    seen: list[str] = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    wrapped = InProcessScheduler(app, scheduler_factory=_Recorder)
    assert not wrapped.running
    await wrapped({"type": "http"}, None, None)
    await wrapped({"type": "websocket"}, None, None)
    assert seen == ["http", "websocket"]
    assert wrapped.running and _Recorder.started == 1
    await wrapped.stop()
    assert not wrapped.running


async def test_in_process_scheduler_follows_lifespan_where_the_server_speaks_it():
    _Recorder.started = 0
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: list[dict] = []

    async def send(message):
        outbox.append(message)

    async def app(scope, receive, send):
        raise AssertionError("lifespan must not reach the application")

    wrapped = InProcessScheduler(app, scheduler_factory=_Recorder)
    await inbox.put({"type": "lifespan.startup"})
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(wrapped({"type": "lifespan"}, inbox.get, send), timeout=5)
    assert [m["type"] for m in outbox] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert _Recorder.started == 1 and not wrapped.running


def test_in_process_only_on_the_embedded_default(monkeypatch):
    assert connection.vendor == "postgresql"
    assert not scheduler.in_process_wanted()
    monkeypatch.setattr(connection, "vendor", "sqlite")
    assert scheduler.in_process_wanted()
    monkeypatch.setenv("HUB_SCHEDULER_IN_PROCESS", "0")
    assert not scheduler.in_process_wanted()


# --- the command -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_run_scheduler_once_runs_a_tick_and_exits(staff):
    operator = staff("op", Role.OPERATOR, online=True)
    OperatorState.objects.filter(user=operator).update(
        presence_changed_at=timezone.now() - timedelta(hours=1)
    )
    out = StringIO()
    call_command("run_scheduler", "--once", stdout=out)
    assert "routing.tick: ok" in out.getvalue()
    assert OperatorState.objects.get(user=operator).presence == "away"


@pytest.mark.django_db
def test_run_scheduler_once_fails_when_a_job_fails(registry):
    def broken() -> None:
        raise RuntimeError("boom")

    job_register("test.broken", every=1, func=broken)
    out = StringIO()
    with pytest.raises(CommandError, match=r"test\.broken"):
        call_command("run_scheduler", "--once", stdout=out)
    assert "routing.tick: ok" in out.getvalue()


def test_run_scheduler_refuses_an_unknown_job():
    with pytest.raises(CommandError, match="unknown job"):
        call_command("run_scheduler", "--once", "--job", "nope")


def _database_url() -> str:
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = quote(db["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}@" if user else ""
    return f"postgres://{auth}{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_run_scheduler_process_ticks_and_stops_cleanly_on_sigterm():
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "HUB_ROUTING_TICK_SECONDS": "0.2",
        "HUB_LOG_LEVEL": "DEBUG",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_scheduler"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    )
    reader.start()
    seen: list[str] = []

    def wait_for(text: str) -> None:
        while not any(text in line for line in seen):
            try:
                seen.append(lines.get(timeout=30))
            except queue.Empty:
                process.kill()
                pytest.fail(f"no {text!r} from run_scheduler; output: {''.join(seen)}")

    try:
        wait_for("scheduler started: routing.tick/0.2s")
        wait_for("job routing.tick: nothing to do")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        reader.join(timeout=5)
        while not lines.empty():
            seen.append(lines.get())
        assert any("scheduler stopped" in line for line in seen), "".join(seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
