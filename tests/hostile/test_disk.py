"""Disk and cache faults, for real: a full disk (an 8 MB tmpfs that .ci/run mounts, path in
CURATE_TEST_SMALL_FS) while writing an output or a cache entry, and a read-only output folder
(CURATE_TEST_RO_FS), give one clear error naming the path, and leave nothing half-written at a
final path; a truncated or corrupted cache entry is detected by its sha256 and recomputed."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

REQUIRE = os.environ.get("CURATE_REQUIRE_SERVICES") == "1"


def _fs(var: str, what: str) -> Path:
    path = os.environ.get(var)
    if not path:
        if REQUIRE:
            pytest.fail(f"{var} is not set but CURATE_REQUIRE_SERVICES=1 (.ci/run mounts {what} as root)")
        pytest.skip(f"{var} is not set: mount {what} as root and export its path (see .ci/run)")
    return Path(path)


@pytest.fixture
def small_fs():
    """A fresh folder on the small tmpfs (removed afterwards, so the next test has the space)."""
    root = _fs("CURATE_TEST_SMALL_FS", "an 8 MB tmpfs")
    st = os.statvfs(root)
    assert st.f_blocks * st.f_frsize <= 64 << 20, f"{root} is not a small file system"
    d = root / uuid.uuid4().hex[:8]
    d.mkdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def ro_fs():
    root = _fs("CURATE_TEST_RO_FS", "a read-only tmpfs")
    assert not os.access(root, os.W_OK), f"{root} is writable"
    return root


def big_source(tmp_path: Path, mb: int = 20) -> Path:
    """About ``mb`` MB of JSONL text that does not compress much (hex of random bytes)."""
    p = tmp_path / "big.jsonl"
    n = mb * 1024 * 1024 // 420
    with open(p, "w") as f:
        for i in range(n):
            f.write(json.dumps({"text": f"row {i} " + os.urandom(200).hex()}) + "\n")
    return p


def pipeline_file(tmp_path: Path, src: Path, workdir: Path, out: Path, step: bool = True) -> Path:
    f = tmp_path / "p.yaml"
    f.write_text(f"name: disk\nworkdir: {workdir}\nout_dir: {out}\n"
                 f"sources:\n  - jsonl: {{path: {src}, text: text}}\n"
                 + ("steps:\n  - clean: {min_words: 2}\n" if step else "") +
                 f"outputs:\n  - jsonl: {{path: {out}/data.jsonl}}\n")
    return f


CLI = """
from curate.cli import app
try:
    app(["build", PATH, "--quiet", "--no-report"])
except SystemExit as e:
    result = e.code
"""


def build(isolated, f: Path, timeout: float = 180):
    return isolated(f"PATH = {str(f)!r}\n" + CLI, timeout=timeout, mem_mb=3072)


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------ full disk
@pytest.mark.slow
def test_output_on_full_disk(isolated, tmp_path, small_fs):
    src = big_source(tmp_path, mb=12)
    out = small_fs / "out"
    out.mkdir()
    (out / "data.jsonl").write_text('{"text": "the previous good output"}\n')
    res = build(isolated, pipeline_file(tmp_path, src, tmp_path / ".curate", out, step=False))
    assert res.result == 1, res.stderr[-2000:]
    msg = " ".join(res.stderr.split())
    assert "disk full" in msg and "data.jsonl" in msg, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert (out / "data.jsonl").read_text() == '{"text": "the previous good output"}\n'
    assert temp_files(small_fs) == []


@pytest.mark.slow
def test_cache_entry_on_full_disk(isolated, tmp_path, small_fs):
    src = big_source(tmp_path, mb=12)
    res = build(isolated, pipeline_file(tmp_path, src, small_fs / ".curate", tmp_path / "out", step=False))
    assert res.result == 1, res.stderr[-2000:]
    msg = " ".join(res.stderr.split())
    assert "disk full" in msg and str(small_fs) in msg and "Traceback" not in res.stderr
    assert temp_files(small_fs) == []
    for meta in small_fs.rglob("meta.json"):                 # an entry marked complete is whole
        files = json.loads(meta.read_text())["_files"]
        assert {n: _sha(meta.parent / n) for n in files} == files
    assert "cannot write" in msg and ".curate" in msg


def test_write_helpers_on_full_disk(isolated, small_fs):
    code = f"""
import os
from curate.io import write_bytes, write_parquet
from curate.errors import CurateError
import polars as pl
out = []
for fn, name in [(lambda p: write_bytes(os.urandom(12 << 20), p), "blob.bin"),
                 (lambda p: write_parquet(pl.DataFrame({{"t": [os.urandom(256).hex() for _ in range(40000)]}}), p),
                  "t.parquet")]:
    try:
        fn({str(small_fs)!r} + "/" + name)
        out.append("no error")
    except CurateError as e:
        out.append(type(e).__name__ + ": " + str(e))
result = out
"""
    res = isolated(code, timeout=60, mem_mb=2048).ok()
    for msg, name in zip(res.result, ["blob.bin", "t.parquet"]):
        assert msg.startswith("StorageError: cannot write") and name in msg and "disk full" in msg, msg
    assert list(small_fs.iterdir()) == []


# ------------------------------------------------------------------------------ read-only folder
@pytest.mark.slow
def test_read_only_output_folder(isolated, tmp_path, ro_fs):
    src = tmp_path / "rows.jsonl"
    src.write_text('{"text": "one two three"}\n' * 5)
    res = build(isolated, pipeline_file(tmp_path, src, tmp_path / ".curate", ro_fs / "out"))
    assert res.result in (1, 2)
    msg = " ".join(res.stderr.split())
    assert "not writable" in msg and str(ro_fs) in msg and "Traceback" not in res.stderr


def test_atomic_write_into_read_only_folder(isolated, ro_fs):
    code = f"""
from curate.io import write_text
from curate.errors import CurateError
try:
    write_text("x", {str(ro_fs / 'x.txt')!r})
except CurateError as e:
    result = str(e)
"""
    res = isolated(code, timeout=30).ok()
    assert res.result.startswith(f"cannot write {ro_fs / 'x.txt'}: not writable"), res.result


# ------------------------------------------------------------------------------ corrupted cache
RUN = """
from curate import Pipeline
res = Pipeline.from_yaml(PATH).run()
result = {"cached": [[r.kind, r.name, r.cached] for r in res.reports],
          "outputs": {p.name: p.read_bytes().hex() for p in res.outputs}}
"""


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupted_cache_entry_is_recomputed(isolated, tmp_path, damage):
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"text": f"row {i} with a few words"}) + "\n" for i in range(300))
                   + '{"text": "x"}\n')
    f = pipeline_file(tmp_path, src, tmp_path / ".curate", tmp_path / "out")
    first = isolated(f"PATH = {str(f)!r}\n" + RUN, timeout=120).ok().result
    entries = sorted((tmp_path / ".curate" / "disk").glob("*/kept-000000.parquet")) + \
        sorted((tmp_path / ".curate" / "disk").glob("*/parts/shard-00000000.kept.parquet"))
    assert len(entries) == 2, sorted(str(p) for p in (tmp_path / ".curate").rglob("*"))  # the source part and the clean shard
    for p in entries:
        data = bytearray(p.read_bytes())
        if damage == "truncate":
            p.write_bytes(bytes(data[: len(data) // 2]))
        else:
            mid = len(data) // 2
            data[mid:mid + 8] = bytes(b ^ 0xFF for b in data[mid:mid + 8])
            p.write_bytes(bytes(data))
    second = isolated(f"PATH = {str(f)!r}\n" + RUN, timeout=120).ok()
    assert [c for c in second.result["cached"] if c[0] in ("source", "step")] == \
        [["source", c[1], False] for c in first["cached"] if c[0] == "source"] + \
        [["step", c[1], False] for c in first["cached"] if c[0] == "step"]
    assert second.result["outputs"] == first["outputs"]    # byte-identical outputs
    assert "does not match its recorded checksum" in second.stderr
    third = isolated(f"PATH = {str(f)!r}\n" + RUN, timeout=120).ok()
    assert all(c[2] for c in third.result["cached"] if c[0] in ("source", "step"))


def test_corrupted_shard_is_dropped(tmp_path):
    import polars as pl

    from curate.cache import ShardStore
    store = ShardStore(tmp_path / "shards")
    store.write(0, pl.DataFrame({"id": ["a", "b"], "text": ["x", "y"]}), stats={"n": 2})
    store.write(1, pl.DataFrame({"id": ["c"], "text": ["z"]}), stats={"n": 1})
    assert store.done(0) and store.done(1)
    p = tmp_path / "shards" / "shard-00000001.kept.parquet"
    p.write_bytes(p.read_bytes()[:-10])
    assert store.done(0) and not store.done(1)
    assert store.keys() == ["00000000"] and not p.exists()


@pytest.mark.slow
def test_read_only_workdir(isolated, tmp_path, ro_fs):
    src = tmp_path / "rows.jsonl"
    src.write_text('{"text": "one two three"}\n' * 5)
    res = build(isolated, pipeline_file(tmp_path, src, ro_fs / ".curate", tmp_path / "out"))
    assert res.result == 1, res.stderr[-2000:]
    msg = " ".join(res.stderr.split())
    assert "not writable" in msg and str(ro_fs / ".curate") in msg and "Traceback" not in res.stderr
    assert not (tmp_path / "out" / "data.jsonl").exists()
