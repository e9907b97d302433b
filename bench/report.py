"""Bench report: the results JSON as markdown tables (bench/results/latest.md)."""

from __future__ import annotations

from typing import Any

SHAPES = [
    ("bare", "bare websockets relay"),
    ("naive", "naive Channels relay (classic Redis layer)"),
    ("hub", "hub embedded (SQLite, in-memory, 1 daphne)"),
    ("hub_pg", "hub PostgreSQL + Redis (2 daphne)"),
]
WEB_PROCESSES = {"bare": 1, "naive": 1, "hub": 1, "hub_pg": 2}

TARGET_THROUGHPUT_RATIO = 2.0
TARGET_P99_MS = 20.0
TARGET_KB = 40.0
TARGET_RECONNECT_S = 15.0


def _get(data: Any, *path: Any) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _ratio(a: Any, b: Any) -> str:
    if not a or not b:
        return "—"
    return f"{a / b:.2f}x"


def _cpu_ms_per_msg(load: dict[str, Any] | None, groups: tuple[str, ...]) -> Any:
    if not load or not load.get("delivered") or not load.get("cpu"):
        return None
    cpu = sum(load["cpu"].get(g, 0.0) for g in groups)
    return cpu * 1000 / load["delivered"]


def _lat(load: dict[str, Any] | None) -> str:
    lat = _get(load, "latency_ms")
    if not lat or lat.get("p50") is None:
        return "—"
    return f"{lat['p50']:.1f} / {lat['p99']:.1f}"


def _client_util(load: dict[str, Any] | None) -> Any:
    if not load or not load.get("cpu"):
        return None
    return 100 * load["cpu"].get("client", 0.0) / load["duration"]


def render_markdown(results: dict[str, Any]) -> str:
    meta, shapes = results["meta"], results["shapes"]
    present = [(k, label) for k, label in SHAPES if k in shapes]
    c_points = [str(c) for c in meta["plan"]["c_points"]]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, fn: Any) -> None:
        cells = []
        for key, _ in present:
            data = shapes.get(key, {})
            try:
                cells.append(fn(key, data))
            except Exception:  # a missing figure must not lose the whole report
                cells.append("—")
        rows.append((label, cells))

    for c in c_points:
        row(
            f"delivered msg/s, C={c} (closed loop)",
            lambda k, d, c=c: _num(_get(d, "load", c, "throughput")),
        )
    for c in c_points:
        row(f"p50 / p99 ms, C={c}", lambda k, d, c=c: _lat(_get(d, "load", c)))
    for c in c_points:
        row(
            f"not delivered within 10 s (closed loop), C={c}",
            lambda k, d, c=c: _num(_get(d, "load", c, "timeouts")),
        )
    for c in c_points[1:]:
        row(
            f"server CPU ms/msg (web), C={c}",
            lambda k, d, c=c: _num(_cpu_ms_per_msg(_get(d, "load", c), ("web",)), 3),
        )
        row(
            f"server CPU ms/msg (web+Redis+PG), C={c}",
            lambda k, d, c=c: _num(_cpu_ms_per_msg(_get(d, "load", c), ("web", "redis", "pg")), 3),
        )
        row(
            f"client CPU % (1 core = 100), C={c}",
            lambda k, d, c=c: _num(_client_util(_get(d, "load", c)), 0),
        )
    rate = meta["plan"]["open_rate"]
    row(f"open loop {rate} msg/s: p50 / p99 ms", lambda k, d: _lat(_get(d, "open")))
    row(f"open loop {rate} msg/s: max ms", lambda k, d: _num(_get(d, "open", "latency_ms", "max")))
    row(
        f"open loop {rate} msg/s: delivered msg/s, not delivered 5 s after the end",
        lambda k, d: f"{_num(_get(d, 'open', 'achieved_rate'))}, {_num(_get(d, 'open', 'lost'))}",
    )
    row(
        f"open loop {rate} msg/s: server CPU % (web)",
        lambda k, d: _num(100 * _get(d, "open", "cpu", "web") / _get(d, "open", "duration"), 0),
    )
    row(
        "handshakes/s, customer (connect + first frame)",
        lambda k, d: _num(_get(d, "handshake_customer", "per_second")),
    )
    row(
        "handshakes/s, console (connect + first frame)",
        lambda k, d: _num(_get(d, "handshake_console", "per_second")),
    )
    row(
        "handshake p99 ms, console (100 concurrent)",
        lambda k, d: _num(_get(d, "handshake_console", "latency_ms", "p99")),
    )
    for size in [str(s) for s in meta["plan"]["idle_sizes"]]:
        row(
            f"idle consoles: connected of {size}, seconds to connect (200 at a time)",
            lambda k, d, s=size: (
                f"{_num(_get(d, 'idle_consoles', 'sizes', s, 'connected'))}, "
                f"{_num(_get(d, 'idle_consoles', 'sizes', s, 'connect_seconds'))}"
            ),
        )
        row(
            f"KB per idle console, {size} open",
            lambda k, d, s=size: _num(_get(d, "idle_consoles", "sizes", s, "kb_per_connection")),
        )
    row(
        f"KB per idle customer, {meta['plan']['idle_customers']} open",
        lambda k, d: _num(
            _get(
                d,
                "idle_customers",
                "sizes",
                str(meta["plan"]["idle_customers"]),
                "kb_per_connection",
            )
        ),
    )
    biggest = str(meta["plan"]["idle_sizes"][-1])
    row(
        f"server CPU s/s while {biggest} consoles sit idle",
        lambda k, d: _num(
            _get(d, "idle_consoles", "sizes", biggest, "idle_cpu_seconds_per_second", "server"), 2
        ),
    )
    burst_n = meta["plan"]["burst"][0] * meta["plan"]["burst"][1]
    row(
        f"burst of {burst_n} into one console: received distinct / lost",
        lambda k, d: f"{_num(_get(d, 'burst', 'distinct'))} / {_num(_get(d, 'burst', 'lost'))}",
    )
    row("burst: in order (ids increasing, no prev gaps)", lambda k, d: _burst_order(d))
    row("burst: seconds to deliver all", lambda k, d: _num(_get(d, "burst", "seconds"), 2))
    row(
        f"reconnect storm of {biggest}: resumed within 15 s",
        lambda k, d: _num(_get(d, "idle_consoles", "reconnect", "resumed_within_deadline")),
    )
    row(
        f"reconnect storm of {biggest}: failed attempts (first error)",
        lambda k, d: (
            f"{_num(_get(d, 'idle_consoles', 'reconnect', 'failures'))}"
            + (
                f" ({_get(d, 'idle_consoles', 'reconnect', 'failure_sample')[0][:60]})"
                if _get(d, "idle_consoles", "reconnect", "failure_sample")
                else ""
            )
        ),
    )
    row(
        f"reconnect storm of {biggest}: seconds until all back",
        lambda k, d: _num(_get(d, "idle_consoles", "reconnect", "all_seconds"), 2),
    )
    row(
        "reconnect storm: sockets that needed a retry",
        lambda k, d: _num(_get(d, "idle_consoles", "reconnect", "sockets_that_retried")),
    )
    row(
        "new conversations routed/s (operators online while routing)",
        lambda k, d: (
            (
                f"{_num(_get(d, 'pairing', 'routed_per_second'))} "
                f"({_num(_get(d, 'pairing', 'operators_online_while_routing'))})"
            )
            if _get(d, "pairing")
            else "—"
        ),
    )
    row(
        "pairing: routed conversations queued although operators were free",
        lambda k, d: _num(_get(d, "pairing", "routed_but_queued_while_operators_free")),
    )
    row("wall seconds for this server's suite", lambda k, d: _num(d.get("wall_seconds")))

    out = [
        f"# Hub benchmark {meta['timestamp']}{' (QUICK)' if meta['quick'] else ''}",
        "",
        f"Commit `{meta['commit']}`, {meta['cpus']} CPUs, Python {meta['python']}, load "
        f"average at start {', '.join(f'{x:.2f}' for x in meta['loadavg_at_start'])}; whole "
        f"run {meta.get('wall_seconds', 0):.0f} s.  One client process (bench/client.py) for "
        f"every server; closed loop = one message in flight per customer/operator pair, "
        f"{meta['plan']['duration']:.0f} s per point; latency is customer send → operator "
        "console receipt, same clock.  Servers:",
        "",
    ]
    out += [f"* **{key}**: {label}" for key, label in present]
    out += [
        "",
        "| metric | " + " | ".join(k for k, _ in present) + " |",
        "|---|" + "---|" * len(present),
    ]
    out += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]

    out += [
        "",
        "## Ratios",
        "",
        "| figure | hub/naive | hub/bare | hub_pg/naive | hub_pg/bare |",
        "|---|---|---|---|---|",
    ]
    for c in c_points:

        def thr(key: str, c: str = c) -> Any:
            return _get(shapes, key, "load", c, "throughput")

        out.append(
            f"| msg/s C={c} | {_ratio(thr('hub'), thr('naive'))} | "
            f"{_ratio(thr('hub'), thr('bare'))} | {_ratio(thr('hub_pg'), thr('naive'))} | "
            f"{_ratio(thr('hub_pg'), thr('bare'))} |"
        )
    for side in ("customer", "console"):

        def hs(key: str, side: str = side) -> Any:
            return _get(shapes, key, f"handshake_{side}", "per_second")

        out.append(
            f"| handshakes/s {side} | {_ratio(hs('hub'), hs('naive'))} | "
            f"{_ratio(hs('hub'), hs('bare'))} | {_ratio(hs('hub_pg'), hs('naive'))} | "
            f"{_ratio(hs('hub_pg'), hs('bare'))} |"
        )

    out += [
        "",
        "## Targets (per web process)",
        "",
        "| target | hub (1 process) | hub_pg (2 processes) |",
        "|---|---|---|",
    ]
    for label, fn in _targets(shapes, meta):
        out.append(f"| {label} | {fn('hub')} | {fn('hub_pg')} |")

    layers = results.get("layers")
    if layers and "error" not in layers:
        out += [
            "",
            "## Channel layer micro-benchmark "
            "(50 groups x 1 receiver, 1 message in flight per group)",
            "",
            "| figure | RedisChannelLayer (classic) | RedisPubSubChannelLayer |",
            "|---|---|---|",
        ]
        for label, path, digits in [
            ("group messages/s", ("relay", "per_second"), 0),
            ("messages per CPU second (layer process)", ("relay", "per_cpu_second_client"), 0),
            ("messages per CPU second (process + redis)", ("relay", "per_cpu_second_total"), 0),
            ("p50 / p99 ms", None, 0),
            ("burst 5,000 to one busy receiver: received", ("burst", "received"), 0),
            ("burst 5,000: dropped", ("burst", "dropped"), 0),
        ]:
            cells = []
            for kind in ("classic", "pubsub"):
                if path is None:
                    cells.append(
                        f"{_get(layers, kind, 'relay', 'p50_ms'):.2f} / "
                        f"{_get(layers, kind, 'relay', 'p99_ms'):.2f}"
                    )
                else:
                    cells.append(_num(_get(layers, kind, *path), digits))
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    elif layers:
        out += ["", f"Channel layer micro-benchmark failed: {layers['error'][-500:]}"]
    if results.get("routing"):
        out += ["", *routing_section(results["routing"])]
    if results.get("knowledge_base"):
        out += ["", *knowledge_base_section(results["knowledge_base"])]
    if results.get("webhooks"):
        out += ["", *webhooks_section(results["webhooks"])]
    for key, data in shapes.items():
        problems = dict(data.get("errors") or {})
        if data.get("error"):
            problems["suite"] = data["error"]
        for name, text in problems.items():
            short = " ".join(text.split())[-500:]
            out += ["", f"**{key} / {name} failed**: `{short}`"]
    return "\n".join(out) + "\n"


def _burst_order(d: dict[str, Any]) -> str:
    b = d.get("burst")
    if not b:
        return "—"
    if "ids_strictly_increasing" in b:
        ok = b["ids_strictly_increasing"] and b["prev_chain_breaks"] == 0
        return "yes" if ok else f"no ({b['prev_chain_breaks']} gaps)"
    return "per customer" if b.get("per_customer_in_order") else "no"


def _targets(shapes: dict[str, Any], meta: dict[str, Any]) -> list[tuple[str, Any]]:
    naive50 = _get(shapes, "naive", "load", "50", "throughput")
    biggest = str(meta["plan"]["idle_sizes"][-1])
    burst_n = meta["plan"]["burst"][0] * meta["plan"]["burst"][1]

    def verdict(ok: bool | None, text: str) -> str:
        if ok is None:
            return f"— {text}".strip()
        return f"{'met' if ok else '**not met**'}: {text}"

    def throughput(key: str) -> str:
        thr = _get(shapes, key, "load", "50", "throughput")
        if not thr or not naive50:
            return verdict(None, "")
        per_process = thr / WEB_PROCESSES[key]
        ratio = per_process / naive50
        return verdict(
            ratio >= TARGET_THROUGHPUT_RATIO,
            f"{per_process:,.0f} msg/s per process = {ratio:.2f}x naive",
        )

    def p99(key: str) -> str:
        value = _get(shapes, key, "open", "latency_ms", "p99")
        lost = _get(shapes, key, "open", "lost")
        if value is None:
            return verdict(None, "")
        return verdict(value <= TARGET_P99_MS and not lost, f"p99 {value:.1f} ms, lost {lost}")

    def memory(key: str) -> str:
        sizes = _get(shapes, key, "idle_consoles", "sizes") or {}
        values = [v["kb_per_connection"] for v in sizes.values()]
        if not values:
            return verdict(None, "")
        return verdict(max(values) <= TARGET_KB, " / ".join(f"{v:.1f}" for v in values) + " KB")

    def burst(key: str) -> str:
        b = _get(shapes, key, "burst")
        if not b:
            return verdict(None, "")
        ok = (
            b["lost"] == 0
            and b["duplicates"] == 0
            and b.get("ids_strictly_increasing", True)
            and b.get("prev_chain_breaks", 0) == 0
        )
        note = "" if b["expected"] >= 5000 else f" (quick run: {b['expected']} only)"
        return verdict(ok, f"{b['distinct']:,}/{b['expected']:,} distinct, lost {b['lost']}{note}")

    def reconnect(key: str) -> str:
        r = _get(shapes, key, "idle_consoles", "reconnect")
        if not r:
            return verdict(None, "")
        ok = r["resumed_within_deadline"] == r["count"]
        note = "" if r["count"] >= 5000 else f" (quick run: {r['count']} only)"
        return verdict(
            ok,
            f"{r['resumed_within_deadline']:,}/{r['count']:,} in 15 s, all in "
            f"{_num(r['all_seconds'], 2)} s{note}",
        )

    return [
        (f"throughput at 50 pairs ≥ {TARGET_THROUGHPUT_RATIO:.0f}x naive relay", throughput),
        (f"p99 at {meta['plan']['open_rate']} msg/s ≤ {TARGET_P99_MS:.0f} ms", p99),
        (f"≤ {TARGET_KB:.0f} KB per idle console", memory),
        (f"burst of {burst_n:,} with 0 lost", burst),
        (f"{biggest} reconnects resumed within {TARGET_RECONNECT_S:.0f} s", reconnect),
    ]


# --- routing (bench.routing) --------------------------------------------------------------
def routing_section(routing: dict[str, Any]) -> list[str]:
    """The routing scenarios' figures and targets, as markdown lines."""
    d = routing.get("derivation") or {}
    a = routing.get("assignment") or {}
    count = d.get("count", 10_000)
    n = a.get("conversations", 1_000)
    out = [
        "## Routing (PostgreSQL + Redis)",
        "",
        f"Batch derivation: {count:,} active conversations of one operator moved to another "
        f"(`operator_conversations_derive`), {len(d.get('runs') or [])} runs back and forth, "
        "timed from the call to the target's console holding all of them. Assignment: "
        f"{n:,} web chat customers send a first message at the same moment, "
        f"{_num(a.get('operators'))} operators online (capacity {_num(a.get('capacity'))}), "
        f"{_num(a.get('processes'))} daphne processes; arrival = the customer's send, "
        "assignment = the operator's console receiving `routing.conversation_assigned`.",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    lat = a.get("latency_ms") or {}
    server = a.get("server_routing_ms") or {}
    rows = [
        (
            f"derivation of {count:,}: service call, median s",
            _num(d.get("service_seconds_median"), 3),
        ),
        (
            f"derivation of {count:,}: until the target's console has all, median / max s",
            f"{_num(d.get('target_console_seconds_median'), 3)} / "
            f"{_num(d.get('target_console_seconds_max'), 3)}",
        ),
        (
            f"derivation of {count:,}: until the source's console dropped all, median s",
            _num(d.get("source_console_seconds_median"), 3),
        ),
        (f"derivation: seeding {count:,} conversations (SQL), s", _num(d.get("seed_seconds"), 2)),
        (
            "derivation: attempts that failed (retried), first error",
            f"{len(d.get('failed_attempts') or [])}"
            + (f" (`{d['failed_attempts'][0][:80]}`)" if d.get("failed_attempts") else ""),
        ),
        (f"{n:,} arrivals: conversations assigned per second", _num(a.get("assigned_per_second"))),
        (
            f"{n:,} arrivals: arrival → assignment on the console, p50 / p99 / max ms",
            f"{_num(lat.get('p50'))} / {_num(lat.get('p99'))} / {_num(lat.get('max'))}",
        ),
        (
            f"{n:,} arrivals: conversation row → assignment row (database), p50 / p99 ms",
            f"{_num(server.get('p50'))} / {_num(server.get('p99'))}",
        ),
        (
            f"{n:,} arrivals: assigned (seen by consoles) / operators used",
            f"{_num(a.get('assigned_seen'))} / {_num(a.get('operators_used'))}",
        ),
        (
            f"{n:,} arrivals: queued at the end / of which while an operator had room",
            f"{_num(a.get('queued_at_end'))} / {_num(a.get('queued_while_room'))}",
        ),
        (
            f"{n:,} arrivals: largest load (capacity {_num(a.get('capacity'))})",
            _num(a.get("max_load")),
        ),
    ]
    out += [f"| {label} | {value} |" for label, value in rows]
    out += ["", "| target | result |", "|---|---|"]
    e2e = d.get("target_console_seconds_max")
    goal = d.get("target_seconds", 2.0)
    failed = len(d.get("failed_attempts") or [])
    verdict = "—"
    if e2e is not None:
        ok = e2e < goal and not failed
        verdict = f"{'met' if ok else '**not met**'}: {e2e:.2f} s at worst"
        if failed:
            verdict += f", {failed} attempt(s) failed"
    out.append(f"| derivation of {count:,} end to end < {goal:.0f} s (every run) | {verdict} |")
    if a.get("assigned_seen") is not None:
        ok = (
            a["assigned_seen"] == n
            and not a.get("queued_while_room")
            and (a.get("most_over_capacity") or 0) <= 0
        )
        out.append(
            f"| {n:,} arrivals: all assigned, none queued while an operator had room, none "
            f"over capacity | {'met' if ok else '**not met**'}: {a['assigned_seen']:,} assigned, "
            f"{_num(a.get('queued_while_room'))} queued with room, largest load "
            f"{_num(a.get('max_load'))} |"
        )
    else:
        out.append(f"| {n:,} arrivals: all assigned, none over capacity | — |")
    for name, data in routing.items():
        if isinstance(data, dict) and data.get("error"):
            out += ["", f"**routing / {name} failed**: `{' '.join(data['error'].split())[-500:]}`"]
    return out


def render_routing_markdown(results: dict[str, Any]) -> str:
    """The report of a routing-only run (``python -m bench.routing``)."""
    meta = results["meta"]
    out = [
        f"# Hub routing benchmark {meta['timestamp']}",
        "",
        f"Commit `{meta['commit']}`, {meta['cpus']} CPUs, load average at start "
        f"{', '.join(f'{x:.2f}' for x in meta.get('loadavg_at_start', ()))}; run alone "
        "(`python -m bench.routing`).",
        "",
        *routing_section(results["routing"]),
    ]
    return "\n".join(out) + "\n"


# --- knowledge base (bench.knowledge_base) ----------------------------------------------------
def knowledge_base_section(kb: dict[str, Any]) -> list[str]:
    """p50/p95 search time per database and query kind, with the p95 target."""
    target = kb.get("target_p95_ms", 10)
    out = [
        "## Knowledge-base search (10,000 replies)",
        "",
        "| database | query kind | p50 ms | p95 ms |",
        "|---|---|---|---|",
    ]
    for name in ("sqlite", "postgresql"):
        figures = kb.get(name) or {}
        rows = [("all", figures.get("all", {})), *figures.get("by_kind", {}).items()]
        for kind, f in rows:
            out.append(f"| {name} | {kind} | {f.get('p50_ms', '—')} | {f.get('p95_ms', '—')} |")
    out += ["", "| target | result |", "|---|---|"]
    for name in ("sqlite", "postgresql"):
        p95 = (kb.get(name) or {}).get("all", {}).get("p95_ms")
        met = p95 is not None and p95 < target
        verdict = "met" if met else "**not met**"
        out.append(f"| {name}: p95 < {target} ms | {verdict}: p95 {p95} ms |")
    return out


# --- inbound webhooks (bench.webhooks) ------------------------------------------------------
def _spread_cell(spread: dict[str, Any] | None) -> str:
    if not spread or spread.get("p50") is None:
        return "—"
    return f"{spread['p50']:,.1f} / {spread['p95']:,.1f} / {spread['p99']:,.1f}"


def _cpu_ms_per_webhook(phase: dict[str, Any] | None, group: str) -> Any:
    if not phase or not phase.get("accepted") or not phase.get("cpu_seconds"):
        return None
    return phase["cpu_seconds"].get(group, 0.0) * 1000 / phase["accepted"]


def webhooks_section(webhooks: dict[str, Any]) -> list[str]:
    """Inbound webhook throughput and webhook → console latency, hub against the bare
    aiohttp baseline measured in the same run, as markdown lines."""
    plan = webhooks.get("plan") or {}
    hub = webhooks.get("hub") or {}
    bare = webhooks.get("bare") or {}
    columns = [
        ("bare", "hot", bare),
        ("bare", "open", bare),
        ("hub", "first", hub),
        ("hub", "hot", hub),
        ("hub", "open", hub),
    ]
    heads = [f"{side} {phase}" for side, phase, _ in columns]
    out = [
        "## Inbound webhooks (PostgreSQL + Redis)",
        "",
        f"Signed WhatsApp webhooks (compact JSON, `X-Hub-Signature-256` HMAC of the raw "
        f"bytes, signed by the generator) spread over {_num(plan.get('processes'))} daphne "
        f"processes; {_num(plan.get('operators'))} operators online, each with a console "
        f"open; {_num(plan.get('customers'))} WhatsApp customers. **first**: one message per "
        "customer opens (and routes) its conversation, closed loop at "
        f"C={_num(plan.get('first_concurrency'))}; **hot**: "
        f"{_num(plan.get('hot_messages'))} more on the open conversations, closed loop at "
        f"C={_num(plan.get('concurrency'))} (at most {_num(plan.get('max_phase_seconds'))} s); "
        f"**open**: {_num(plan.get('open_rate'))} "
        f"webhooks/s for {_num(plan.get('open_seconds'))} s, timed from the scheduled send. "
        "Console latency = webhook send → first `chat.message_created` on a console, one "
        "clock; lost = answered 2xx but not on a console within "
        f"{_num(plan.get('drain_seconds'))} s. **bare**: as many processes of a bare "
        "aiohttp server that checks the signature and answers 200, same generator.",
        "",
        "| figure | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(columns),
    ]

    def row(label: str, fn: Any) -> None:
        cells = []
        for _, phase, side in columns:
            data = side.get(phase)
            cells.append(fn(data) if data else "—")
        out.append(f"| {label} | " + " | ".join(cells) + " |")

    row(
        "webhooks sent / answered 2xx",
        lambda p: (
            f"{_num(p['sent'])} / {_num(p['accepted'])}"
            + (" (time cap)" if p.get("stopped_at_time_cap") else "")
        ),
    )
    row(
        "loop",
        lambda p: f"closed, C={p['c']}" if p["mode"] == "closed" else f"open, {p['rate']}/s",
    )
    row(
        "non-2xx answers / client errors",
        lambda p: (
            f"{sum(p['non_2xx'].values())}"
            + (
                f" ({', '.join(f'{k}: {v}' for k, v in p['non_2xx'].items())})"
                if p["non_2xx"]
                else ""
            )
            + f" / {p['errors']}"
        ),
    )
    row("accepted webhooks per second", lambda p: _num(p.get("accepted_per_second")))
    row("HTTP answer p50 / p95 / p99 ms", lambda p: _spread_cell(p.get("http_ms")))
    row("webhook → console p50 / p95 / p99 ms", lambda p: _spread_cell(p.get("console_ms")))
    row("webhook → console max ms", lambda p: _num(_get(p, "console_ms", "max")))
    row("delivered to consoles per second", lambda p: _num(p.get("delivered_per_second")))
    row(
        "lost (2xx, never on a console) / on a console without 2xx",
        lambda p: (
            f"{_num(p.get('lost'))} / {_num(p.get('seen_not_accepted'))}" if "lost" in p else "—"
        ),
    )
    row(
        "CPU ms per accepted webhook: web processes",
        lambda p: _num(_cpu_ms_per_webhook(p, "web"), 2),
    )
    row(
        "CPU s: web / redis / postgres (all on the machine) / generator",
        lambda p: " / ".join(
            _num(p["cpu_seconds"].get(g), 1) for g in ("web", "redis", "pg", "client")
        ),
    )
    ratios = webhooks.get("ratios") or {}
    out += [
        "",
        "| ratio (same run) | hub/bare |",
        "|---|---|",
        "| accepted webhooks/s, hot closed loop | "
        f"{_num(ratios.get('hot_accepted_per_second'), 3)} |",
        f"| HTTP answer p99, hot closed loop | {_num(ratios.get('hot_http_p99'), 1)} |",
        f"| accepted webhooks/s, open loop | {_num(ratios.get('open_accepted_per_second'), 3)} |",
        f"| HTTP answer p99, open loop | {_num(ratios.get('open_http_p99'), 1)} |",
    ]
    db = hub.get("db") or {}
    logs = hub.get("log_problems") or {}
    if db:
        out += [
            "",
            "| check | result |",
            "|---|---|",
            f"| inbound messages stored = webhooks answered 2xx | "
            f"{'yes' if db.get('stored_equals_accepted') else '**no**'}: "
            f"{_num(db.get('inbound_messages'))} stored, {_num(db.get('accepted_webhooks'))} "
            "accepted |",
            f"| duplicates seen on consoles | {_num(hub.get('duplicates'))} |",
            f"| conversations / operators holding them / queued | "
            f"{_num(db.get('conversations'))} / {_num(db.get('operators_holding'))} / "
            f"{_num(db.get('queued'))} |",
            "| PostgreSQL connections to the hub's database, max / whole server max | "
            f"{_num(_get(db, 'connections', 'max'))} / "
            f"{_num(_get(db, 'connections', 'server_max'))} |",
            "| messages the hub sent out (system messages) | "
            f"{_num(db.get('outbound_messages'))} |",
            f"| warnings or errors in the hub's logs | {_num(logs.get('count'))}"
            + (f" (`{logs['sample'][0][:100]}`)" if logs.get("sample") else "")
            + " |",
        ]
    for side in ("bare", "hub"):
        error = (webhooks.get(side) or {}).get("error")
        if error:
            out += ["", f"**webhooks / {side} failed**: `{' '.join(error.split())[-500:]}`"]
    return out


def render_webhooks_markdown(results: dict[str, Any]) -> str:
    """The report of a webhook-only run (``python -m bench.webhooks``)."""
    meta = results["meta"]
    webhooks = results["webhooks"]
    out = [
        f"# Hub inbound webhook benchmark {meta['timestamp']}"
        + (" (QUICK)" if _get(webhooks, "plan", "quick") else ""),
        "",
        f"Commit `{meta['commit']}`, {meta['cpus']} CPUs, load average at start "
        f"{', '.join(f'{x:.2f}' for x in meta.get('loadavg_at_start', ()))}; run alone "
        f"(`python -m bench.webhooks`) in {_num(webhooks.get('wall_seconds'))} s.",
        "",
        *webhooks_section(webhooks),
    ]
    return "\n".join(out) + "\n"
