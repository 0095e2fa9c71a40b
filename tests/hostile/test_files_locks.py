"""Files and locks: outputs, manifest and rejects honour the umask; temp files of killed writers
are swept by the next run (only ours, only of dead processes); two builds of one pipeline never
run at once (the second fails naming the holder's pid, or waits with --wait). Real processes,
real signals, each in a child with a time and memory limit."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.io import atomic_path, exclusive_lock, sweep_temp_files, write_text
from curate.io import LockedError

ROWS = "".join(f'{{"text": "row number {i} has enough words here", "label": "a"}}\n' for i in range(40)) \
    + '{"text": "short", "label": "b"}\n' * 3


def pipeline(tmp_path: Path, extra_step: str = "") -> Path:
    data = tmp_path / "rows.jsonl"
    data.write_text(ROWS)
    f = tmp_path / "p.yaml"
    f.write_text(f"name: fl\nworkdir: {tmp_path}/.curate\nout_dir: {tmp_path}/out\n"
                 f"sources:\n  - jsonl: {{path: {data}, text: text, label: label}}\n"
                 f"steps:\n  - clean: {{min_words: 3}}\n{extra_step}"
                 f"outputs:\n  - jsonl: {{path: {tmp_path}/out/data.jsonl}}\n"
                 f"  - parquet: {{path: {tmp_path}/out/data.parquet}}\n")
    return f


BUILD = """
import os, sys
os.umask(UMASK)
from curate import Pipeline
res = Pipeline.from_yaml(PATH).run()
result = [str(res.manifest_path), str(res.rejects_path), [str(p) for p in res.outputs]]
"""


def mode(p: str | Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_manifest_rejects_honour_umask(isolated, tmp_path, umask):
    f = pipeline(tmp_path)
    res = isolated(f"UMASK = {umask}\nPATH = {str(f)!r}\n" + BUILD, timeout=120).ok()
    manifest, rejects, outputs = res.result
    files = [manifest, rejects, *outputs]
    assert len(outputs) == 2 and rejects != "None"
    want = 0o666 & ~umask
    assert {p: oct(mode(p)) for p in files} == {p: oct(want) for p in files}


def test_atomic_path_modes_and_no_leftovers(tmp_path):
    old = os.umask(0o027)
    try:
        write_text("x", tmp_path / "a.txt")
        with atomic_path(tmp_path / "b.bin") as tmp:   # a writer that makes its own 0600 file
            tmp.unlink()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, b"y")
            os.close(fd)
        with pytest.raises(RuntimeError):
            with atomic_path(tmp_path / "c.txt") as tmp:
                tmp.write_text("half")
                raise RuntimeError("writer failed")
    finally:
        os.umask(old)
    assert mode(tmp_path / "a.txt") == 0o640 and mode(tmp_path / "b.bin") == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]   # no c.txt, no temp


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_sweep_removes_only_our_temp_files_of_dead_processes(tmp_path):
    dead = _dead_pid()
    ours_dead = tmp_path / f".data.jsonl.{dead}-0123abcd.tmp"
    ours_live = tmp_path / f".data.jsonl.{os.getppid()}-0123abcd.tmp"       # a live process's work
    legacy_old = tmp_path / ".manifest.json.k3j_x9Qz.tmp"                     # mkstemp name, old run
    legacy_new = tmp_path / ".manifest.json.a8Bz_x1Q.tmp"                     # may be live: keep
    user = [tmp_path / ".notes.tmp", tmp_path / "data.jsonl.tmp", tmp_path / f".x.{dead}-zzzz.tmp"]
    for p in [ours_dead, ours_live, legacy_old, legacy_new, *user]:
        p.write_text("partial")
    os.utime(legacy_old, (time.time() - 7200, time.time() - 7200))
    removed = sweep_temp_files([tmp_path])
    assert sorted(removed) == sorted([ours_dead, legacy_old])
    assert all(p.exists() for p in [ours_live, legacy_new, *user])


def test_kill_9_while_writing_then_next_build_sweeps(isolated, tmp_path):
    f = pipeline(tmp_path)
    out = tmp_path / "out"
    out.mkdir(parents=True)
    # a writer killed with SIGKILL mid-write leaves its temp file beside the target
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom curate.io import atomic_path\n"
        f"with atomic_path({str(out / 'data.jsonl')!r}) as tmp:\n"
        "    tmp.write_text('half a file')\n    print('writing', flush=True)\n    time.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=10)
    left = [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and f".{writer.pid}-" in left[0].name and not (out / "data.jsonl").exists()
    isolated(f"UMASK = 0o022\nPATH = {str(f)!r}\n" + BUILD, timeout=120).ok()
    assert not left[0].exists()
    assert not [p for p in out.rglob("*.tmp")]
    assert (out / "data.jsonl").read_text().count("\n") == 40


# ------------------------------------------------------------------------------ the build lock
HOLD = """
import os, time
from curate import Pipeline
import curate.engine as E
orig = E.Engine.run
def slow_run(self, *a, **k):
    open(READY, "w").write(str(os.getpid()))
    deadline = time.time() + HOLD_S          # hold the lock until the test says go (or HOLD_S)
    while not os.path.exists(GO) and time.time() < deadline:
        time.sleep(0.05)
    return orig(self, *a, **k)
E.Engine.run = slow_run
Pipeline.from_yaml(PATH).run()
result = time.time()
"""


def _start_holder(tmp_path: Path, f: Path, hold_s: float) -> tuple[subprocess.Popen, Path]:
    ready = tmp_path / "ready"
    src = (f"READY = {str(ready)!r}\nGO = {str(tmp_path / 'go')!r}\nHOLD_S = {hold_s}\n"
           f"PATH = {str(f)!r}\n" + HOLD)
    proc = subprocess.Popen([sys.executable, "-c", "import json, time\nresult = None\n" + src +
                             "\nprint(json.dumps(result))"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ready.exists(), proc.stderr.read() if proc.poll() is not None else "holder did not start"
    return proc, ready


def _cli(f: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from curate.cli import main; main()", "build", str(f),
                           "--quiet", "--no-report", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_second_build_fails_fast_naming_the_holder(tmp_path):
    f = pipeline(tmp_path)
    holder, _ = _start_holder(tmp_path, f, hold_s=30)
    try:
        t0 = time.time()
        second = _cli(f, timeout=60)
        took = time.time() - t0
        assert second.returncode == 1
        assert f"pid {holder.pid}" in second.stderr and "--wait" in second.stderr, second.stderr
        assert took < 25, f"the second build did not fail fast ({took:.1f} s)"
        assert holder.poll() is None                     # the first build runs on
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed with SIGKILL: the kernel released its lock, a new build runs
    third = _cli(f)
    assert third.returncode == 0, third.stderr


@pytest.mark.slow
def test_second_build_waits_with_wait(tmp_path):
    f = pipeline(tmp_path)
    holder, _ = _start_holder(tmp_path, f, hold_s=90)
    second = subprocess.Popen([sys.executable, "-c", "from curate.cli import main; main()", "build", str(f),
                               "--quiet", "--no-report", "--wait"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        line = second.stderr.readline()              # blocks until the second build says it waits
        assert f"waiting for pid {holder.pid}" in line, line + second.stderr.read()
        assert second.poll() is None
        (tmp_path / "go").touch()                    # let the first build finish
        out, err = holder.communicate(timeout=120)
        assert holder.returncode == 0, err
        out2, err2 = second.communicate(timeout=120)
    finally:
        holder.kill()
        second.kill()
    assert second.returncode == 0, err2
    assert "every step cached" in out2               # it ran after the first, on its caches


def test_lock_in_process_api(tmp_path):
    lock = tmp_path / "x" / ".lock"
    with exclusive_lock(lock, "a build of pipeline 'x'"):
        assert lock.read_text().strip() == str(os.getpid())
        code = ("from curate.io import exclusive_lock, LockedError\n"
                f"try:\n    exclusive_lock({str(lock)!r}, 'a build of pipeline x').__enter__()\n"
                "except LockedError as e:\n    print(e.holder, e)\n")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert p.stdout.startswith(f"{os.getpid()} ") and "already running" in p.stdout, p.stderr
    assert lock.read_text() == ""                        # released and emptied
    with exclusive_lock(lock, "again"):
        pass
    assert LockedError.__mro__[1].__name__ == "CurateError"


def test_atomic_dir_honours_umask_and_killed_dirs_are_swept(tmp_path):
    from curate.io import atomic_dir
    target = tmp_path / "ds"
    old = os.umask(0o022)
    try:
        with atomic_dir(target) as tmp:
            (tmp / "part-0.arrow").write_bytes(b"new")
        with pytest.raises(RuntimeError):
            with atomic_dir(target) as tmp:
                (tmp / "part-0.arrow").write_bytes(b"half")
                raise RuntimeError("writer failed")
    finally:
        os.umask(old)
    assert mode(target) == 0o755 and (target / "part-0.arrow").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    dead = _dead_pid()
    left = tmp_path / f".ds.{dead}-89abcdef.tmp"
    left.mkdir()
    (left / "part-0.arrow").write_bytes(b"partial")
    assert sweep_temp_files([tmp_path]) == [left] and not left.exists()


def test_stale_lock_file_never_blocks(tmp_path):
    lock = tmp_path / "p" / ".lock"
    lock.parent.mkdir()
    lock.write_text(f"{_dead_pid()}\n")          # left by a killed build: no flock behind it
    with exclusive_lock(lock, "a build"):
        assert lock.read_text().strip() == str(os.getpid())
    lock.write_text("garbage \x00\xff not a pid")
    with exclusive_lock(lock, "a build"):
        pass
