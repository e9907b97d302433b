"""Bench tooling: CPU seconds and RSS of server processes, read from /proc via psutil."""

from __future__ import annotations

import resource
from collections.abc import Iterable

import psutil


def raise_nofile() -> int:
    """Lift the soft open-files limit to the hard limit (5,000 sockets need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    out: dict[int, float] = {}
    for pid in pids:
        try:
            out[pid] = _cpu(psutil.Process(pid))
        except psutil.Error:
            pass
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two samples by processes present in both (a process that
    started in between counts from zero)."""
    return sum(after[pid] - before.get(pid, 0.0) for pid in after)


def rss_bytes(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            pass
    return total


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on the machine (backends come and go)."""
    pids = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in {"postgres", "postmaster"}:
            pids.append(proc.pid)
    return pids


class CpuMeter:
    """Samples named groups of processes; ``"pg"`` may be given as ``"auto"``."""

    def __init__(self, groups: dict[str, list[int] | str]) -> None:
        self.groups = groups
        self._before: dict[str, dict[int, float]] = {}

    def _pids(self, name: str) -> list[int]:
        value = self.groups[name]
        if value == "auto":
            return postgres_pids()
        return list(value)  # type: ignore[arg-type]

    def start(self) -> None:
        self._before = {name: cpu_by_pid(self._pids(name)) for name in self.groups}
        self._before["client"] = {0: _cpu(psutil.Process())}

    def stop(self) -> dict[str, float]:
        out = {
            name: round(cpu_delta(self._before[name], cpu_by_pid(self._pids(name))), 3)
            for name in self.groups
        }
        out["client"] = round(_cpu(psutil.Process()) - self._before["client"][0], 3)
        return out
