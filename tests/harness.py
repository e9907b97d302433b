"""Real processes for end-to-end tests and the benchmark: fresh PostgreSQL databases, daphne
processes on free ports, a private redis-server that a test may stop and start.

Everything binds to 127.0.0.1 and is torn down by the caller (use the context managers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from hub.serve import daphne_command
from tests.services import PG_URL, require_postgres

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DAPHNE = str(Path(sys.executable).with_name("daphne"))
TEST_SECRET = "e2e-secret-key-not-for-production"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _psql_admin(sql: str) -> None:
    import psycopg

    admin_url = urlunparse(urlparse(PG_URL)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def fresh_postgres(prefix: str = "hub_e2e") -> Iterator[str]:
    """A new empty database on the local server; dropped afterwards."""
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _psql_admin(f'CREATE DATABASE "{name}"')
    parsed = urlparse(PG_URL)
    try:
        yield urlunparse(parsed._replace(path=f"/{name}"))
    finally:
        with contextlib.suppress(Exception):
            _psql_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def hub_env(database_url: str | None, redis_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a hub process: only what the test names, nothing inherited that
    could change the shape (e.g. a developer's DATABASE_URL)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("HUB_") or k in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"})
    }
    env["SECRET_KEY"] = TEST_SECRET
    env["PYTHONPATH"] = str(ROOT)
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=180,
    )


def migrate(env: dict[str, str]) -> None:
    manage(env, "migrate", "--noinput", "-v0")


def create_staff(
    env: dict[str, str],
    username: str,
    role: str,
    password: str,
    *,
    online: bool = False,
    capacity: int | None = None,
) -> None:
    args = ["staff_user", username, "--role", role]
    if online:
        args.append("--online")
    if capacity is not None:
        args += ["--capacity", str(capacity)]
    manage(dict(env, HUB_STAFF_PASSWORD=password), *args)


class HubProcess:
    """One daphne process serving the hub on a free port."""

    def __init__(self, env: dict[str, str], port: int | None = None, log_dir: Path | None = None):
        self.env = env
        self.port = port or free_port()
        self.log_path = (log_dir or Path("/tmp")) / f"hub-daphne-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> HubProcess:
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            daphne_command(port=self.port),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited early: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.http}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"daphne did not become healthy: {self.log_path.read_text()[-2000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def __enter__(self) -> HubProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisServer:
    """A private redis-server on a free port (no persistence), to stop and start at will."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxclients",
                "20000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start (is the redis-server package installed?)")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http_json(
    method: str, url: str, body: dict | None = None, token: str | None = None, timeout: float = 10
) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def api_token(base_http: str, username: str, password: str) -> str:
    status, body = http_json(
        "POST", f"{base_http}/api/auth/token/", {"username": username, "password": password}
    )
    if status != 201:
        raise RuntimeError(f"token request failed: {status} {body}")
    return body["token"]


class ThreadedApp:
    """An aiohttp app (a stand-in for an external system) served on a free loopback port
    from a background thread with its own event loop, for synchronous tests:
    ``with ThreadedApp(make_app) as server: server.url``."""

    def __init__(self, make_app: Callable[[], Any], *, name: str = "standin") -> None:
        self.url = ""
        self._make_app = make_app
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        from hub.standin_server import app_served

        async def serve() -> None:
            self._stop = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            async with app_served(self._make_app()) as url:
                self.url = url
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()

    def __enter__(self) -> ThreadedApp:
        self._thread.start()
        if not self._ready.wait(15) or self._error is not None:
            raise RuntimeError(f"the stand-in did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)


def sqlite_probe_results(probe_module: str, var_dir: Path) -> dict:
    """Run a scenario probe (``python -m probe_module``) in its own process on a freshly
    migrated SQLite file under ``var_dir`` — the embedded default with its real migrations,
    not the suite's PostgreSQL — and return the results it printed."""
    env = hub_env(None, None, HUB_VAR_DIR=str(var_dir))
    migrate(env)
    proc = subprocess.run(
        [PYTHON, "-m", probe_module],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = json.loads(proc.stdout.strip().splitlines()[-1])
    assert output["vendor"] == "sqlite"
    return output["results"]
