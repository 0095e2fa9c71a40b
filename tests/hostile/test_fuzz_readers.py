"""Property-based fuzzing of every text reader (csv, tsv, json, jsonl, the NI source): random
bytes and mutated valid files (flipped, inserted, deleted bytes; truncation; gzip, a truncated
gzip, a `.gz` name on plain bytes) must give only rows and quarantined rows, or a `CurateError`,
never another exception; and the accounting must hold: every record is counted exactly once, and
in JSON Lines every physical line with visible content is a row or a reject."""
from __future__ import annotations

import gzip
import io
import json
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from curate.connectors import _textio as T
from curate.errors import CurateError

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SEEDS = {
    "csv": b'id,text,label\n1,"hello, world",a\n2,"multi\nline ""quoted""",b\n3,plain,c\n4,caf\xc3\xa9,a\n',
    "tsv": b"id\ttext\tlabel\n1\thello\ta\n2\t\"bare quote\tb\n3\tplain\tc\n",
    "jsonl": b'{"text": "a", "n": 1}\n{"text": "b", "n": [1, {"x": null}]}\n\n{"text": "\xc3\xa9", "n": 2.5}\n',
    "json": b'[{"text": "a", "n": 1}, {"text": "b", "n": {"k": [1, 2]}}, {"text": "c"}]',
}
VISIBLE = set(b"{}[]\"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """``seed`` with a few random edits (flip, insert, delete, duplicate, truncate)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "truncate"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 8))]
        elif op == "dup":
            data[i:i] = data[i:i + draw(st.integers(1, 40))] * draw(st.integers(1, 50))
        else:
            del data[i:]
    return bytes(data)


def inputs(fmt: str):
    """(bytes, file name): random or mutated content, sometimes gzipped or mislabelled."""
    content = st.one_of(st.binary(max_size=3000), mutated(SEEDS[fmt]))
    wrap = st.sampled_from(["plain", "plain", "gzip", "gzip_cut", "mislabelled"])

    def build(args):
        data, how = args
        if how == "plain":
            return data, f"f.{fmt}"
        if how == "mislabelled":
            return data, f"f.{fmt}.gz"
        z = gzip.compress(data)
        return (z if how == "gzip" else z[:max(len(z) // 2, 1)]), f"f.{fmt}.gz"
    return st.tuples(content, wrap).map(build)


def read(fmt: str, data: bytes, name: str) -> tuple[list[str], list[str], dict] | None:
    """(row locators, reject reasons with locators, file info), or None on a CurateError."""
    info: dict = {}
    opts = T.OPTIONS[fmt](max_record_bytes=1024)
    try:
        batches = list(T.iter_format(fmt, io.BytesIO(data), f"{fmt}:{name}", opts, "o", batch_rows=3, info=info))
    except CurateError:
        return None
    rows, rejects = [], []
    for b in batches:
        if b.rows.height:
            rows += b.rows["source"].to_list()
        if b.rejected.height:
            rej = b.rejected
            assert rej["reason"].null_count() == 0 and all(rej["reason"].to_list())
            rejects += rej["source"].to_list()
    return rows, rejects, info


def check_accounting(fmt: str, data: bytes, name: str) -> None:
    got = read(fmt, data, name)
    if got is None:
        return
    rows, rejects, info = got
    everything = rows + rejects
    assert len(everything) == len(set(everything)), "a record was counted twice"
    prefix = f"{fmt}:{name}"
    assert all(s == prefix or s.startswith(prefix + ":") for s in everything)
    if fmt in ("csv", "tsv", "jsonl") and info.get("compression") == "none" \
            and T.streams.compression_named(name) is None and info.get("encoding") not in ("utf-16", "utf-32"):
        lines = data.split(b"\n")
        nos = {int(s.rsplit(":", 1)[1]) for s in everything if s != prefix}
        assert all(1 <= n <= len(lines) for n in nos)
        if fmt == "jsonl" and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
            visible = {i for i, ln in enumerate(lines, 1) if VISIBLE & set(ln)}
            assert visible <= nos, f"lines {sorted(visible - nos)[:5]} were dropped silently"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json"])
def test_text_readers_never_crash_and_account_for_every_record(fmt):
    @FUZZ
    @given(inputs(fmt))
    def run(case):
        check_accounting(fmt, *case)
    run()


@pytest.mark.timeout(120)
@FUZZ
@given(st.one_of(st.binary(max_size=2000), mutated(
    b'{"Definition": ["d"], "Instances": [{"id": "t1-1", "input": "a", "output": ["x"]}, '
    b'{"input": "b", "output": ["y", "z"]}, {"input": "", "output": []}]}')))
def test_ni_source_never_crashes_and_accounts_for_every_instance(data):
    from curate.connectors.natural_instructions import NaturalInstructionsSource
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "task1_fuzz.json")
        with open(path, "wb") as f:
            f.write(data)
        try:
            batches = list(NaturalInstructionsSource({"path": path}).read())
        except CurateError:
            return
        n = sum(b.rows.height + b.rejected.height for b in batches)
        task = json.loads(data.decode("utf-8"))
        assert n == len(task["Instances"])
