"""Routing races between two daphne processes on one PostgreSQL database.

Six operators with small capacities and different skills are online; waves of web chat
customers, half on each process, send their first messages at the same moment, while
operators close conversations (freeing slots that pull from the queue), one operator at a
time leaves, is derived by an admin (spread, or to one colleague) and comes back, and the
admin transfers conversations between operators — all through the public APIs, from
concurrent tasks.  A sampler reads the database all along.

Asserted, on the database (the record):

* every conversation is with at most one operator, and its ``Assignment`` history is one
  unbroken chain (each change of hands starts from where the previous one left it) that
  ends with the conversation's current operator;
* no operator ever held more than their capacity (sampled during the run, and at the end);
* at the end, nothing waits in the queue while an online operator who serves its type has
  a free slot.

A private redis-server (tests/harness.RedisServer) carries the doorbells: Redis pub/sub
channels ignore database numbers, so a shared server would mix this test's doorbells with
those of another run on the machine.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from typing import Any

import psycopg
import pytest
import websockets

from tests.e2e.client import STAFF_PASSWORD, Customer, recv_until
from tests.e2e.conftest import prepare_hub
from tests.harness import (
    PYTHON,
    ROOT,
    HubProcess,
    RedisServer,
    api_token,
    fresh_postgres,
    manage,
)

pytestmark = pytest.mark.e2e

# (code, priority); the second is the default type.
TYPES = [("claims", 300), ("payments", 200), ("followup", 100)]
# username -> (capacity, skills: empty = every type)
OPERATORS = {
    "op0": (2, []),
    "op1": (3, []),
    "op2": (2, ["claims"]),
    "op3": (2, ["payments"]),
    "op4": (1, ["claims", "payments"]),
    "op5": (2, ["followup"]),
}
WAVES = 4
PER_WAVE = 24  # customers per wave, half on each process
WAVE_GAP = 0.6  # seconds between waves
HUB_ENV = {"HUB_WS_RATE_PER_SECOND": "1000", "HUB_WS_RATE_BURST": "1000"}

SETUP_CODE = """
import json, os
from routing.models import OperatorState, QueryType
from django.contrib.auth import get_user_model
spec = json.loads(os.environ["RACE_SPEC"])
types = {}
for position, (code, priority) in enumerate(spec["types"]):
    types[code] = QueryType.objects.create(
        code=code, name=code.title(), priority=priority, menu_position=position,
        is_default=position == 1,
    )
users = get_user_model().objects
for username, (capacity, skills) in spec["operators"].items():
    state = OperatorState.objects.get(user__username=username)
    state.query_types.set([types[c] for c in skills])
print(json.dumps({u.username: u.pk for u in users.all()}))
"""


def post_json(url: str, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    """POST and return (status, JSON body); a body that is not JSON (a 404 page, a crash)
    comes back as ``{"text": ...}`` for the assertion message."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw or b"{}")
    except json.JSONDecodeError:
        return status, {"text": raw.decode(errors="replace")[:300]}


# --- admin actions: REST when the endpoints exist, else the services in a subprocess ------
# One long-lived ``manage.py shell`` reading a JSON call per line (the REST path's
# stand-in): a process per call would take a second each and hardly race at all.
ADMIN_DRIVER_CODE = """
import json, sys
from django.contrib.auth import get_user_model
from hub.exceptions import HubError
from routing import services
for line in sys.stdin:
    call = json.loads(line)
    actor = get_user_model().objects.get(username=call.pop("actor"))
    try:
        result = getattr(services, call.pop("service"))(actor=actor, **call)
        reply = {"status": 200, "body": result}
    except HubError as error:
        reply = {"status": error.status, "body": {"code": str(error.code)}}
    print(json.dumps(reply, default=str), flush=True)
"""


class Admin:
    """An admin's transfers and derivations: the REST API (POST
    /api/conversations/<id>/transfer/, POST /api/derivations/) if this hub has it, else the
    same services called by a ``manage.py shell`` process on the same database."""

    def __init__(self, web: HubProcess, env: dict[str, str], username: str) -> None:
        self.web = web
        self.username = username
        self.token = api_token(web.http, username, STAFF_PASSWORD)
        # An empty body: a 400 (missing field) if the route exists, a 404 if not.
        status, _ = self._post("/api/derivations/", {})
        self.rest = status != 404
        self._driver: subprocess.Popen | None = None
        self._lock = threading.Lock()
        if not self.rest:
            self._driver = subprocess.Popen(
                [PYTHON, "manage.py", "shell", "-v", "0", "-c", ADMIN_DRIVER_CODE],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )

    def close(self) -> None:
        if self._driver is not None:
            self._driver.stdin.close()
            self._driver.wait(timeout=30)

    def _post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return post_json(f"{self.web.http}{path}", body, self.token)

    def _service(self, service: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        assert self._driver is not None
        call = json.dumps({"actor": self.username, "service": service, **kwargs})
        with self._lock:  # one call at a time on the driver's pipe
            self._driver.stdin.write(call + "\n")
            self._driver.stdin.flush()
            line = self._driver.stdout.readline()
            while line and not line.startswith("{"):  # anything else the shell prints
                line = self._driver.stdout.readline()
        assert line, "the admin driver process died"
        reply = json.loads(line)
        return reply["status"], reply["body"]

    def transfer(self, conversation_id: str, to_operator_id: int | None) -> tuple[int, dict]:
        if self.rest:
            return self._post(
                f"/api/conversations/{conversation_id}/transfer/",
                {"to_operator_id": to_operator_id},
            )
        return self._service(
            "conversation_transfer", conversation_id=conversation_id, to_operator_id=to_operator_id
        )

    def derive(self, from_operator_id: int, to_operator_id: int | None) -> tuple[int, dict]:
        if self.rest:
            return self._post(
                "/api/derivations/",
                {"from_operator_id": from_operator_id, "to_operator_id": to_operator_id},
            )
        return self._service(
            "operator_conversations_derive",
            from_operator_id=from_operator_id,
            to_operator_id=to_operator_id,
        )


# Refusals a racing admin or operator may meet: the state moved under them.
EXPECTED_REFUSALS = {
    "operator_at_capacity",
    "operator_unavailable",
    "operator_unqualified",
    "conversation_closed",
    "conflict",
    "nothing_to_derive",
    "not_found",
}


# --- the database, read directly ----------------------------------------------------------
def _operators(db: psycopg.Connection) -> dict[int, dict[str, Any]]:
    rows = db.execute(
        "SELECT s.user_id, s.presence, s.capacity, "
        "COALESCE(array_agg(t.querytype_id) FILTER (WHERE t.querytype_id IS NOT NULL), '{}') "
        "FROM routing_operatorstate s "
        "LEFT JOIN routing_operatorstate_query_types t ON t.operatorstate_id = s.id "
        "GROUP BY s.user_id, s.presence, s.capacity"
    ).fetchall()
    return {
        user_id: {"presence": presence, "capacity": capacity, "skills": set(skills)}
        for user_id, presence, capacity, skills in rows
    }


def _loads(db: psycopg.Connection) -> dict[int, int]:
    rows = db.execute(
        "SELECT operator_id, count(*) FROM chat_conversation WHERE status = 'assigned' "
        "GROUP BY operator_id"
    ).fetchall()
    return dict(rows)


def _over_capacity(db: psycopg.Connection) -> list[tuple[int, int, int]]:
    """(operator, load, capacity) over capacity, read in one snapshot."""
    return db.execute(
        "SELECT c.operator_id, count(*), s.capacity FROM chat_conversation c "
        "JOIN routing_operatorstate s ON s.user_id = c.operator_id "
        "WHERE c.status = 'assigned' GROUP BY c.operator_id, s.capacity "
        "HAVING count(*) > s.capacity"
    ).fetchall()


class Sampler:
    """Reads every operator's load every few milliseconds on its own connection, in a
    thread, and keeps what it saw over capacity."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.samples = 0
        self.violations: list[tuple[int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True) as db:
            while not self._stop.is_set():
                self.violations += _over_capacity(db)
                self.samples += 1
                time.sleep(0.005)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _check_history(db: psycopg.Connection) -> list[str]:
    """Every conversation's changes of hands form one chain ending at its operator."""
    problems = []
    conversations = {
        pk: (status, operator_id)
        for pk, status, operator_id in db.execute(
            "SELECT id, status, operator_id FROM chat_conversation"
        ).fetchall()
    }
    history: dict[Any, list[tuple[str, int | None, int | None]]] = defaultdict(list)
    for conversation_id, kind, from_id, to_id in db.execute(
        "SELECT conversation_id, kind, from_operator_id, to_operator_id FROM routing_assignment "
        "ORDER BY created_at, id"
    ).fetchall():
        history[conversation_id].append((kind, from_id, to_id))
    for pk, (status, operator_id) in conversations.items():
        if (status == "assigned") != (operator_id is not None) and status != "closed":
            problems.append(f"{pk}: status {status} with operator {operator_id}")
        holder = None
        for kind, from_id, to_id in history[pk]:
            if from_id != holder:
                problems.append(f"{pk}: {kind} from {from_id} while {holder} held it")
            holder = to_id
        if holder != operator_id:
            problems.append(f"{pk}: history ends with {holder}, row says {operator_id}")
    return problems


def _stuck_in_queue(db: psycopg.Connection) -> list[str]:
    """Queued conversations an online operator who serves their type had room for."""
    operators = _operators(db)
    loads = _loads(db)
    stuck = []
    for pk, type_id in db.execute(
        "SELECT id, query_type_id FROM chat_conversation WHERE status = 'queued'"
    ).fetchall():
        for user_id, op in operators.items():
            serves = not op["skills"] or type_id in op["skills"]
            if op["presence"] == "online" and serves and loads.get(user_id, 0) < op["capacity"]:
                stuck.append(
                    f"{pk} (type {type_id}) queued while operator {user_id} had "
                    f"{loads.get(user_id, 0)}/{op['capacity']}"
                )
    return stuck


# --- the test -------------------------------------------------------------------------------
def test_two_processes_route_transfer_and_derive_without_double_assignment(tmp_path):
    with fresh_postgres() as db_url, RedisServer() as redis:
        staff = {"admin": {"role": "Admin"}}
        staff |= {name: {"online": True, "capacity": cap} for name, (cap, _) in OPERATORS.items()}
        env = prepare_hub(db_url, redis.url, staff, **HUB_ENV)
        spec = {"types": TYPES, "operators": OPERATORS}
        done = manage(dict(env, RACE_SPEC=json.dumps(spec)), "shell", "-c", SETUP_CODE)
        user_ids: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
        with (
            HubProcess(env, log_dir=tmp_path) as web1,
            HubProcess(env, log_dir=tmp_path) as web2,
            Sampler(db_url) as sampler,
        ):
            admin = Admin(web1, env, "admin")
            tokens = {name: api_token(web2.http, name, STAFF_PASSWORD) for name in OPERATORS}
            try:
                outcome = asyncio.run(_race(web1, web2, db_url, admin, tokens, user_ids))
            finally:
                admin.close()
            logs = web1.log() + web2.log()
        with psycopg.connect(db_url, autocommit=True) as db:
            history_problems = _check_history(db)
            final_over = _over_capacity(db)
            stuck = _stuck_in_queue(db)
            counts = dict(
                db.execute("SELECT status, count(*) FROM chat_conversation GROUP BY 1").fetchall()
            )
            kinds = dict(
                db.execute("SELECT kind, count(*) FROM routing_assignment GROUP BY 1").fetchall()
            )

    actions = outcome["actions"]
    summary = f"actions {actions}, conversations {counts}, assignment kinds {kinds}"
    failures = []
    if outcome["unexpected"]:
        failures.append(f"unexpected replies: {outcome['unexpected'][:8]}")
    errors = _server_errors(logs)
    if errors:
        failures.append(f"server errors: {errors.most_common(5)}")
    if outcome["acked"] != WAVES * PER_WAVE or sum(counts.values()) != WAVES * PER_WAVE:
        failures.append(f"{outcome['acked']} acked of {WAVES * PER_WAVE} first messages")
    if history_problems:
        failures.append(f"assignment history: {history_problems[:8]}")
    if sampler.violations or final_over:
        failures.append(f"over capacity: {(sampler.violations or final_over)[:8]}")
    if stuck:
        failures.append(f"{len(stuck)} queued while an operator had room: {stuck[:5]}")
    # The race really raced: transfers, derivations and closes happened and succeeded.
    if not (actions.get("transfer:ok") and actions.get("derive:ok") and actions.get("close:ok")):
        failures.append("too few transfers, derivations or closes succeeded")
    assert sampler.samples > 10, "the sampler did not run"
    assert not failures, "\n".join([*failures, summary])


def _server_errors(log: str) -> Counter[str]:
    """Each traceback in the daphne logs as its exception line and the innermost frame of
    the hub's own code, counted."""
    found: Counter[str] = Counter()
    blocks = log.split("Traceback (most recent call last):")[1:]
    for block in blocks:
        lines = block.splitlines()
        frames = [
            ln.strip() for ln in lines if ln.strip().startswith('File "/') and ".venv" not in ln
        ]
        error = next(
            (ln for ln in lines if ln and not ln.startswith((" ", "\t")) and ":" in ln), "?"
        )
        found[f"{error.strip()[:120]} at {frames[-1] if frames else '?'}"] += 1
    return found


async def _race(
    web1: HubProcess,
    web2: HubProcess,
    db_url: str,
    admin: Admin,
    tokens: dict[str, str],
    user_ids: dict[str, int],
) -> dict[str, Any]:
    rng = random.Random(3)
    actions: Counter[str] = Counter()
    unexpected: list[str] = []
    stop = asyncio.Event()
    db = await asyncio.to_thread(psycopg.connect, db_url, autocommit=True)
    names = {pk: name for name, pk in user_ids.items()}

    def note(what: str, status: int, body: dict[str, Any]) -> None:
        if status in (200, 201):
            actions[f"{what}:ok"] += 1
        elif body.get("code") in EXPECTED_REFUSALS:
            actions[f"{what}:{body['code']}"] += 1
        else:
            detail = body.get("code") or " ".join(str(body.get("text", body)).split())[:80]
            unexpected.append(f"{what}: {status} {detail}")

    async def rows(sql: str, *params: Any) -> list[tuple]:
        return await asyncio.to_thread(lambda: db.execute(sql, params).fetchall())

    async def assigned() -> list[tuple[str, int]]:
        return [(c, op) for c, op, _ in await assigned_with_types()]

    async def assigned_with_types() -> list[tuple[str, int, str]]:
        return [
            (str(pk), op, code)
            for pk, op, code in await rows(
                "SELECT c.id, c.operator_id, t.code FROM chat_conversation c "
                "JOIN routing_querytype t ON t.id = c.query_type_id WHERE c.status = 'assigned'"
            )
        ]

    def fit(codes: set[str], load: Counter[int], exclude: int, incoming: int = 1) -> list[int]:
        """Operators who serve these types and had room when last read (the admin's view,
        which may be stale by the time the request lands: that is the race)."""
        return [
            user_ids[name]
            for name, (capacity, skills) in OPERATORS.items()
            if user_ids[name] != exclude
            and (not skills or codes <= set(skills))
            and load[user_ids[name]] + incoming <= capacity
        ]

    async def customers() -> int:
        """Waves of customers, half on each process, each wave sending at one moment."""
        acked = 0
        for wave in range(WAVES):
            sockets = []
            for i in range(PER_WAVE):
                web = web1 if i % 2 else web2
                code = TYPES[i % len(TYPES)][0]
                ws = await websockets.connect(f"{web.ws}/ws/webchat/?type={code}", open_timeout=10)
                session = await recv_until(ws, lambda f: f["type"] == "session", what="session")
                sockets.append(Customer(ws, session, f"w{wave}c{i}"))
            sent = await asyncio.gather(
                *(c.send(f"hello from {c.name}", within=30) for c in sockets),
                return_exceptions=True,
            )
            for customer, result in zip(sockets, sent, strict=True):
                if isinstance(result, BaseException):
                    unexpected.append(f"{customer.name}: {result!r}")
                else:
                    acked += 1
            await asyncio.gather(*(c.close() for c in sockets))
            await asyncio.sleep(WAVE_GAP)
        stop.set()
        return acked

    async def closer(name: str, web: HubProcess) -> None:
        """An operator closing one of theirs now and then: the freed slot pulls the queue."""
        while not stop.is_set():
            await asyncio.sleep(rng.uniform(0.05, 0.3))
            mine = [c for c, op in await assigned() if op == user_ids[name]]
            if not mine:
                continue
            status, body = await asyncio.to_thread(
                post_json,
                f"{web.http}/api/conversations/{rng.choice(mine)}/close/",
                {},
                tokens[name],
            )
            note("close", status, body)

    async def transfers() -> None:
        while not stop.is_set():
            await asyncio.sleep(rng.uniform(0.02, 0.15))
            current = await assigned_with_types()
            if not current:
                continue
            conversation_id, holder, code = rng.choice(current)
            load = Counter(op for _, op, _ in current)
            targets = fit({code}, load, exclude=holder)
            # Mostly to someone who fits; sometimes back to routing (None).
            target = rng.choice(targets) if targets and rng.random() < 0.8 else None
            note("transfer", *await asyncio.to_thread(admin.transfer, conversation_id, target))

    async def derivations() -> None:
        """One operator at a time leaves, is derived (spread or to a colleague), returns."""
        while not stop.is_set():
            await asyncio.sleep(rng.uniform(0.1, 0.4))
            current = await assigned_with_types()
            loaded = Counter(op for _, op, _ in current)
            if not loaded:
                continue
            source = rng.choice(sorted(loaded))
            codes = {code for _, op, code in current if op == source}
            token = tokens[names[source]]
            web = rng.choice([web1, web2])
            presence = f"{web.http}/api/presence/"
            away = await asyncio.to_thread(post_json, presence, {"presence": "offline"}, token)
            note("leave", *away)
            # Half spread over whoever has room (None), half to one colleague who fits.
            targets = [
                t
                for t in fit(codes, loaded, exclude=source, incoming=loaded[source])
                if rng.random() < 0.5
            ]
            target = rng.choice(targets) if targets else None
            note("derive", *await asyncio.to_thread(admin.derive, source, target))
            back = await asyncio.to_thread(post_json, presence, {"presence": "online"}, token)
            note("return", *back)

    try:
        results = await asyncio.gather(
            customers(),
            transfers(),
            derivations(),
            *(closer(name, web1 if i % 2 else web2) for i, name in enumerate(OPERATORS)),
        )
    finally:
        await asyncio.to_thread(db.close)
    actions["rest" if admin.rest else "subprocess"] += 1
    return {"acked": results[0], "actions": dict(actions), "unexpected": unexpected}
