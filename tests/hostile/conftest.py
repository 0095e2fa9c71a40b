"""Hostile-input tests run each case in a child process with a wall-clock and an address-space
limit, so a hang or a memory blow-up fails that test instead of taking CI down.

``run_isolated(code, timeout=60, mem_mb=1536)`` runs ``code`` (Python source) in a fresh
interpreter (``RLIMIT_AS`` = ``mem_mb``), after a prelude that imports ``json`` and sets
``result = None``; whatever the code leaves in ``result`` (JSON-able) comes back, with the
child's wall time and peak RSS. A case that times out or dies fails with its stderr.
The slowest and the most memory-hungry case are printed at the end of the session.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

import pytest

MARK = "@@ISOLATED-RESULT@@"
_PRELUDE = "import json, resource, sys, time\n_t0 = time.time()\nresult = None\n"
# Peak RSS from /proc's VmHWM: ru_maxrss would include the forked parent's pages (Linux folds the
# pre-exec high-water mark into it), i.e. pytest's own footprint.
_EPILOGUE = (
    "\ntry:\n    _hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "except (OSError, StopIteration):\n    _hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    f"print({MARK!r} + json.dumps({{'result': result, 'seconds': time.time() - _t0, "
    "'peak_mb': _hwm / 1024}, default=str))\n")
MEASURED: list[tuple[str, float, float]] = []      # (test id, seconds, peak MB) of every run


@dataclass
class Isolated:
    """What a child run gave: exit status, output, ``result``, wall seconds and peak RSS in MB."""

    rc: int
    stdout: str
    stderr: str
    result: Any = None
    seconds: float = 0.0
    peak_mb: float = 0.0
    extra: dict = field(default_factory=dict)

    def ok(self) -> "Isolated":
        """Assert the child exited cleanly; returns self."""
        assert self.rc == 0, f"child failed (rc={self.rc}):\n{self.stderr[-3000:]}"
        return self


def _limits(mem_mb: int):
    def apply() -> None:
        limit = mem_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def run_isolated(code: str, timeout: float = 60, mem_mb: int = 1536, cwd: str | None = None,
                 env: dict[str, str] | None = None) -> Isolated:
    """Run ``code`` in a child Python with a time and memory limit (see the module docstring)."""
    src = _PRELUDE + textwrap.dedent(code) + _EPILOGUE
    child_env = {**os.environ, "POLARS_MAX_THREADS": "2", "OMP_NUM_THREADS": "1",
                 "RAYON_NUM_THREADS": "2", "PYTHONFAULTHANDLER": "1", **(env or {})}
    try:
        p = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=timeout,
                           cwd=cwd, env=child_env, preexec_fn=_limits(mem_mb))
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        pytest.fail(f"hung: still running after {timeout} s (killed)\n{err[-2000:]}")
    out, res = p.stdout, Isolated(p.returncode, p.stdout, p.stderr)
    if MARK in out:
        out, _, tail = out.rpartition(MARK)
        data = json.loads(tail)
        res.stdout, res.result, res.seconds, res.peak_mb = out, data["result"], data["seconds"], data["peak_mb"]
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
    MEASURED.append((test, res.seconds, res.peak_mb))
    return res


@pytest.fixture
def isolated():
    """The :func:`run_isolated` helper, as a fixture."""
    return run_isolated


def pytest_terminal_summary(terminalreporter) -> None:
    if not MEASURED:
        return
    slow = max(MEASURED, key=lambda m: m[1])
    big = max(MEASURED, key=lambda m: m[2])
    terminalreporter.write_line(f"hostile: {len(MEASURED)} isolated runs; slowest {slow[1]:.2f} s ({slow[0]}); "
                                f"largest peak RSS {big[2]:.0f} MB ({big[0]})")
