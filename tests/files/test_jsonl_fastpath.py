"""The JSON Lines fast path (a batch of plain lines parsed at once by pyarrow) must give exactly
what the per-line path gives: the same batches, rows, types, column order, locators, rejects and
value notes, on awkward input and across block and batch boundaries. Each case reads the input
with ``jsonl.FAST_PATH`` on and off."""
from __future__ import annotations

import codecs
import io
import json
import random

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from curate.connectors import _textio as T
from curate.connectors._textio import jsonl as TJ, lines as TL


def _read(data: bytes, *, fast: bool, batch_rows: int = T.BATCH_ROWS, limit: int | None = None):
    old = TJ.FAST_PATH
    TJ.FAST_PATH = fast
    info: dict = {}
    try:
        batches = [(b.rows, b.rejected) for b in T.iter_jsonl(io.BytesIO(data), "jsonl:m.jsonl",
                                                               T.JsonlOptions(), "o",
                                                               batch_rows=batch_rows, limit=limit, info=info)]
    finally:
        TJ.FAST_PATH = old
    return batches, info


def _same(data: bytes, **kw):
    """Read ``data`` both ways, assert identical batches and notes; return the fast batches."""
    (fast, fi), (slow, si) = _read(data, fast=True, **kw), _read(data, fast=False, **kw)
    assert len(fast) == len(slow)
    for (fr, fj), (sr, sj) in zip(fast, slow):
        assert_frame_equal(fr, sr)
        assert_frame_equal(fj, sj)
    assert fi == si
    return fast


@pytest.fixture(autouse=True)
def small_batches_fast(monkeypatch):
    """The fast path for any batch size (it is off below FAST_MIN_BYTES in real runs)."""
    monkeypatch.setattr(TJ, "FAST_MIN_BYTES", 0)


@pytest.fixture
def fast_calls(monkeypatch):
    """Counts the batches the fast parse accepted (so a test can show the fast path ran)."""
    seen = {"ok": 0, "no": 0}
    real = TJ._fast_frame

    def spy(data, n):
        out = real(data, n)
        seen["ok" if out is not None else "no"] += 1
        return out
    monkeypatch.setattr(TJ, "_fast_frame", spy)
    return seen


def _line(rng: random.Random, i: int) -> str:
    """One line: mostly plain flat objects, sometimes something awkward."""
    k = rng.random()
    if k < 0.55:
        return json.dumps({"id": i, "text": f"doc {i} " + rng.choice(["é ü 中文 😀", "tab\\t", "q\"uote", "x"]),
                           "score": rng.choice([0.5, 1.25, -0.0, 1e-300]), "ok": rng.random() < 0.5},
                          ensure_ascii=rng.random() < 0.5)
    return rng.choice([
        '{"id": %d, "text": null}' % i,                      # null
        '{"text": "missing id"}',                            # missing key
        '{"id": %d.0, "text": "float id"}' % i,              # int vs float
        '{"id": 12345678901234567890123, "text": "big"}',    # beyond 64 bits
        '{"id": 9223372036854775807, "text": "max"}',
        '{"id": %d, "text": "phone 1234567890123456789012"}' % i,
        '{"id": %d, "meta": {"a": [1, 2], "b": null}}' % i,  # nested
        '{"id": %d, "tags": ["a", "b"]}' % i,
        '',                                                  # blank
        '   ',
        '{"id": %d, "text": "bad" ' % i,                     # invalid
        '[1, 2]', 'null', '"just a string"', '42',           # not objects
        '{"id": NaN}', '{"id": Infinity}',
        '{"id": %d, "id": %d}' % (i, i + 1),                 # duplicate key
        '{"id": %d, "text": "\\u00e9\\n\\"\\\\\\/"}' % i,      # escapes
        '{"id": "%d", "text": "id as text"}' % i,            # mixed types
        '{"id": true}',
        '{"when": "2024-01-02", "id": %d}' % i,              # date-like string
        '{"when": "2024-01-02T03:04:05", "id": %d}' % i,
        '{}',
        '  {"id": %d, "text": "indented"}' % i,
        '{"a":' * 70 + '1' + '}' * 70,                       # too deep
        '{"id": %d, "text": "x"} trailing' % i,
        '{"id": 1}{"id": 2}',
        '{"id": %d, "ctrl": "a\x01b"}' % i,                   # raw control character
        '{"id": 1e400}',
        '\ufeff{"id": %d}' % i,                              # BOM mid-file
        '{"id": %d, "text": "\u2028 and \x85"}' % i,
    ])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("batch_rows", [1, 3, 50, 400])
def test_random_mixed_files_same_both_ways(seed, batch_rows, monkeypatch):
    rng = random.Random(seed)
    monkeypatch.setattr(TL, "CHUNK_BYTES", rng.choice([64, 300, 4096]))
    monkeypatch.setattr(TL, "SAMPLE_BYTES", rng.choice([64, 1000, 1 << 16]))
    monkeypatch.setattr(TJ, "PIECE_BYTES", rng.choice([50, 2000, 1 << 22]))     # parsed in pieces, or whole
    lines = [_line(rng, i) for i in range(600)]
    eol = "\r\n" if seed % 3 == 2 else "\n"
    data = eol.join(lines).encode() + (b"" if seed % 2 else eol.encode())
    if seed == 4:
        data = codecs.BOM_UTF8 + data
    _same(data, batch_rows=batch_rows)
    _same(data, batch_rows=batch_rows, limit=rng.randint(1, 300))


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
@pytest.mark.parametrize("batch_rows", [1, 7, 100, 50_000])
def test_plain_files_take_the_fast_path(chunk, batch_rows, monkeypatch, fast_calls):
    monkeypatch.setattr(TL, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(TL, "SAMPLE_BYTES", min(chunk, 1 << 16))
    monkeypatch.setattr(TJ, "PIECE_BYTES", 100 if batch_rows > 7 else 1 << 22)
    rng = random.Random(batch_rows)
    rows = [{"text": "w" * rng.randint(1, 80) + " é😀\"\\", "n": i, "f": i / 7, "b": i % 2 == 0,
             "z": None, **({"late": "x"} if i > 150 else {})} for i in range(300)]
    data = "".join(json.dumps(r, ensure_ascii=i % 2 == 0) + "\n" for i, r in enumerate(rows)).encode()
    batches = _same(data, batch_rows=batch_rows)
    assert fast_calls["ok"] >= 1 and fast_calls["no"] == 0
    df = pl.concat([b for b, _ in batches], how="diagonal_relaxed")
    assert df.height == 300 and df["source"][0] == "jsonl:m.jsonl:1" and df["source"][-1] == "jsonl:m.jsonl:300"
    assert df.columns == ["source", "text", "n", "f", "b", "z", "late"]
    assert df.schema["z"] == pl.Null and df.schema["n"] == pl.Int64 and df.schema["f"] == pl.Float64


@pytest.mark.parametrize("bad", ['{"text": "bad"', "", "null", '{"n": 1}{"n": 2}', '{"n": NaN}',
                                 '{"n": 123456789012345678901}', '{"n": {"deep": 1}}', '{"n": "x"}',
                                 '{"n": 1, "n": 2}', '{"when": "2024-01-02"}', "\ufeff{}"])
@pytest.mark.parametrize("at", [0, 57, 199])
def test_one_awkward_line_anywhere(bad, at, monkeypatch, fast_calls):
    """One awkward line in a plain file: its batch falls back line by line, the others stay fast,
    and the line's quarantine (file, line, reason) is what the per-line path says."""
    monkeypatch.setattr(TL, "CHUNK_BYTES", 512)
    monkeypatch.setattr(TL, "SAMPLE_BYTES", 512)
    monkeypatch.setattr(TJ, "PIECE_BYTES", 300)
    lines = [json.dumps({"n": i, "text": f"t{i}"}) for i in range(200)]
    lines[at] = bad
    data = ("\n".join(lines) + "\n").encode()
    batches = _same(data, batch_rows=50)
    assert fast_calls["ok"] >= 2
    rej = [j for _, j in batches if j.height]
    if bad in ('{"text": "bad"', "null", '{"n": 1}{"n": 2}') or (bad == "\ufeff{}" and at):  # a BOM first is skipped
        assert rej and rej[0]["source"].to_list() == [f"jsonl:m.jsonl:{at + 1}"]


def test_notes_and_crlf_identical(fast_calls):
    """NaN and a big int send the batch line by line: their notes are counted as before."""
    data = b'{"a": 1}\r\n{"a": 2.5}\r\n{"a": NaN}\r\n{"a": 99999999999999999999}\r\n'
    df = _same(data)[0][0]
    assert df.height == 4 and fast_calls == {"ok": 0, "no": 1}
    _, info = _read(data, fast=True)
    assert info["big_ints_as_text"] == 1 and info["non_finite_to_null"] == 1


def test_dates_stay_text(fast_calls):
    data = b'{"when": "2024-01-02", "t": "2024-01-02T03:04:05"}\n{"when": "2025-12-31", "t": null}\n'
    df = _same(data)[0][0]
    assert df.schema["when"] == pl.String and df["when"].to_list() == ["2024-01-02", "2025-12-31"]
    assert fast_calls["ok"] == 1


def test_pieces_with_different_columns_or_types_parse_whole(monkeypatch, fast_calls):
    """Pieces parsed on threads that disagree (a column only in a later piece, an int column that
    turns float) give way to one parse: the same column order and types as the per-line path."""
    monkeypatch.setattr(TJ, "PIECE_BYTES", 200)
    lines = [json.dumps({"b": i, "a": "x"}) for i in range(40)] + [json.dumps({"c": 1.5, "a": "y", "b": 2.5})]
    lines += [json.dumps({"a": "z", "b": i}) for i in range(40)]
    df = _same(("\n".join(lines) + "\n").encode())[0][0]
    assert df.columns == ["source", "b", "a", "c"] and df.schema["b"] == pl.Float64
    assert fast_calls == {"ok": 1, "no": 0}


def test_small_batches_take_the_per_line_path(monkeypatch, fast_calls):
    monkeypatch.setattr(TJ, "FAST_MIN_BYTES", 4 << 20)
    data = b"".join(b'{"n": %d}\n' % i for i in range(100))
    assert _same(data, batch_rows=30)[0][0].height == 30
    assert fast_calls == {"ok": 0, "no": 4}
