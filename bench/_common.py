"""What every benchmark script shares: logging, the results table, the machine header and
the environment its sessionbase children run in."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Row:
    figure: str
    value: str
    baseline: str
    baseline_value: str
    ratio: str
    target: str
    status: str  # "ok", "MISS" or "" (information only)


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def add(self, *args: str) -> None:
        self.rows.append(Row(*args))

    def table(self) -> str:
        head = Row("figure", "sessionbase", "baseline (same run)", "baseline", "ratio",
                   "target", "")  # fmt: skip
        cells = [list(asdict(r).values()) for r in [head, *self.rows]]
        widths = [max(len(c[i]) for c in cells) for i in range(len(head.__dict__))]
        lines = []
        for n, c in enumerate(cells):
            lines.append(
                "| " + " | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)) + " |"
            )
            if n == 0:
                lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)

    def print_report(self, title: str, machine: str, load_start: float, load_end: float) -> None:
        """The report every benchmark ends with: what ran where and under what load, the
        table, then the notes."""
        print()
        print(f"sessionbase {title}, {time.strftime('%Y-%m-%d')}")
        print(machine)
        print(f"load average (1 min) {load_start:.2f} at the start, {load_end:.2f} at the end")
        print()
        print(self.table())
        print()
        for note in self.notes:
            print(f"- {note}")


def raise_nofile() -> int:
    """Lift the open-files limit to its hard maximum (a thousand sockets need it); the new
    soft limit. Children started afterwards inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def sessionbase_cmd() -> list[str]:
    exe = BIN / "sessionbase"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "sessionbase"]


def child_env(work: Path) -> dict[str, str]:
    """The environment for sessionbase children: no SESSIONBASE_*/CODEX_HOME, a throwaway HOME,
    and Python's bytecode cache on, as for any installed program. (A shell that sets
    PYTHONDONTWRITEBYTECODE would make every child, and every read-ahead worker, compile all
    it imports from source at each start: about 0.4 s more for ``serve``.)"""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SESSIONBASE_") and k not in ("CODEX_HOME", "PYTHONDONTWRITEBYTECODE")
    }
    fake = work / "user-home"
    fake.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(fake)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def git_version() -> str:
    """The commit the benchmark runs, with ``+dirty`` when src/ has uncommitted changes."""
    here = Path(__file__).parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=here,
            check=False,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "../src"], capture_output=True, text=True,
            cwd=here, check=False,
        ).stdout.strip()  # fmt: skip
    except OSError:
        return "?"
    return f"{commit}{'+dirty' if dirty else ''}"


def machine_line(libraries: str, version: str) -> str:
    """The header line: CPU, cores, Python, the libraries that matter to this bench, commit."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {libraries}, "
        f"sessionbase @ {version}"
    )
