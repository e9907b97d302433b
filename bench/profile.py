"""Bench profiling: one load point against one server shape, with py-spy on the servers.

    python -m bench.profile hub --c 50 --seconds 10        # or hub_pg, naive, bare
    python -m bench.profile hub --scenario idle --count 5000

Writes ``bench/results/profile/<shape>-<pid>.txt`` (py-spy's collapsed stacks, hottest
first) and prints the top frames by own and by total time.  Needs ``py-spy`` (pip) and
permission to ptrace the servers (root, or CAP_SYS_PTRACE).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.procstat import raise_nofile
from bench.run import (
    RESULTS,
    ROUTED,
    bare_shape,
    hub_embedded_shape,
    hub_pg_shape,
    log,
    naive_shape,
    run_client,
)


def summarize(collapsed: Path, top: int = 25) -> str:
    """Own and total sample counts per function from py-spy's collapsed output."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_s)
        samples += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    out = [f"{collapsed.name}: {samples} samples", "", "own time:"]
    out += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own.most_common(top)]
    out += ["", "total time (inclusive):"]
    out += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in total.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("shape", choices=["bare", "naive", "hub", "hub_pg"])
    parser.add_argument("--scenario", choices=["load", "idle", "burst"], default="load")
    parser.add_argument("--c", type=int, default=50)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=int, default=0, help="open loop at this rate")
    parser.add_argument("--gil", action="store_true", help="sample only the GIL holder (CPU)")
    parser.add_argument(
        "--delay", type=float, default=None, help="seconds before sampling (client setup)"
    )
    args = parser.parse_args()
    raise_nofile()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    out_dir = RESULTS / "profile"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hub-profile-") as tmpdir:
        tmp = Path(tmpdir)
        operators = max(args.c, 50)
        factory = {
            "bare": lambda: bare_shape(tmp),
            "naive": lambda: naive_shape(tmp),
            "hub": lambda: hub_embedded_shape(tmp, operators, min(operators, ROUTED)),
            "hub_pg": lambda: hub_pg_shape(tmp, operators, min(operators, ROUTED)),
        }[args.shape]
        with factory() as shape:
            pairs = None
            if shape.kind == "hub" and args.scenario in {"load", "burst"}:
                pairs = run_client(
                    shape,
                    {
                        "cmd": "pair",
                        "target": shape.target(),
                        "count": operators,
                        "online": min(operators, ROUTED),
                        "routed": ROUTED,
                    },
                    timeout=900,
                )["pairs"]
            if args.scenario == "load":
                cfg = {
                    "cmd": "load",
                    "target": shape.target(),
                    "pairs": pairs,
                    "c": args.c,
                    "mode": "open" if args.rate else "closed",
                    "rate": args.rate,
                    "duration": args.seconds,
                    "warmup": 2.0,
                    "cpu_pids": shape.cpu_pids,
                }
                delay = 1.5 if args.c < 200 else 2.0 + args.c / 50  # client connects first
            elif args.scenario == "burst":
                cfg = {
                    "cmd": "burst",
                    "target": shape.target(),
                    "pairs": pairs,
                    "customers": 50,
                    "messages": 100,
                    "cpu_pids": shape.cpu_pids,
                }
                delay = 1.0
            else:
                cfg = {
                    "cmd": "idle",
                    "target": shape.target(split_consoles=True),
                    "side": "console",
                    "sizes": [args.count],
                    "rss_pids": shape.web_pids,
                    "cpu_pids": shape.cpu_pids,
                    "reconnect": True,
                    "idle_cpu_window": args.seconds,
                }
                delay = 0.0
            if args.delay is not None:
                delay = args.delay
            records = []
            threads = []
            for pid in shape.web_pids:
                target = out_dir / f"{args.shape}-{args.scenario}-{pid}.txt"
                cmd = [
                    pyspy,
                    "record",
                    "-p",
                    str(pid),
                    "-d",
                    str(int(args.seconds)),
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    str(target),
                    "--nonblocking",
                ]
                if args.gil:
                    cmd.append("--gil")
                records.append(target)

                def spy(cmd: list[str] = cmd) -> None:
                    threading.Event().wait(delay)
                    subprocess.run(cmd, capture_output=True, check=False)

                threads.append(threading.Thread(target=spy))
            for t in threads:
                t.start()
            result = run_client(shape, cfg, timeout=900)
            for t in threads:
                t.join()
            log(json.dumps({k: v for k, v in result.items() if k != "pairs"})[:2000])
            for target in records:
                if target.exists():
                    summary = summarize(target)
                    target.with_suffix(".summary.txt").write_text(summary + "\n")
                    print(summary)


if __name__ == "__main__":
    main()
