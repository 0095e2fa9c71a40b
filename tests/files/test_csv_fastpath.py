"""The CSV fast path (runs of simple lines split by polars) must give exactly what the csv-module
path gives: the same batches, rows, locators and rejects, on mixed files and across block
boundaries. Each case reads the input twice, with ``_textio.FAST_PATH`` on and off."""
from __future__ import annotations

import io
import random

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from curate.connectors import _textio as T
from curate.connectors._textio import delimited as TD, lines as TL


def _read(data: bytes, options: T.CsvOptions, *, fast: bool, batch_rows: int = T.BATCH_ROWS,
          limit: int | None = None, locator: str = "csv:m.csv") -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    old = TD.FAST_PATH
    TD.FAST_PATH = fast
    try:
        return [(b.rows, b.rejected) for b in T.iter_csv(io.BytesIO(data), locator, options, "o",
                                                         batch_rows=batch_rows, limit=limit)]
    finally:
        TD.FAST_PATH = old


def _same(data: bytes, options: T.CsvOptions | None = None, **kw) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    """Read ``data`` both ways, assert identical batches, return them."""
    options = options or T.CsvOptions()
    fast, slow = _read(data, options, fast=True, **kw), _read(data, options, fast=False, **kw)
    assert len(fast) == len(slow)
    for (fr, fj), (sr, sj) in zip(fast, slow):
        assert_frame_equal(fr, sr)
        assert_frame_equal(fj, sj)
    return fast


def _rows(batches) -> pl.DataFrame:
    frames = [r for r, _ in batches if r.width]
    return pl.concat(frames) if frames else pl.DataFrame()


def _rejects(batches) -> pl.DataFrame:
    frames = [j for _, j in batches if j.height]
    return pl.concat(frames) if frames else pl.DataFrame()


def _mixed_file(n: int = 3000) -> tuple[bytes, dict[int, str]]:
    """A big CSV of plain lines with, here and there: quoted fields with embedded newlines and
    commas, wrong field counts, an unclosed quote, a stray \\r, CRLF endings, blank lines and
    undecodable bytes. Returns the bytes and {line: expected reject reason}."""
    out: list[bytes] = [b"id,text,label\n"]
    line, expect = 2, {}
    for i in range(n):
        k = i % 97
        if k == 10:
            rec = f'{i},"multi\nline, with ""quotes""\nend",q\n'.encode()
        elif k == 20:
            rec, expect[line] = f"{i},too,many,fields\n".encode(), "wrong_field_count"
        elif k == 30:
            rec, expect[line] = f"{i},short\n".encode(), "wrong_field_count"
        elif k == 40:
            rec, expect[line] = f"{i},caf\xe9 \xff,bad\n".encode("latin-1"), "bad_encoding"
        elif k == 50:
            rec = f"{i},crlf line,x\r\n".encode()
        elif k == 60:
            rec = b"\n\r\n"
        elif k == 70 and i > 500:
            rec, expect[line] = f'{i},"never closed,x\n'.encode(), "bad_quoting"
        elif k == 80:
            rec, expect[line] = f"{i},stray\rcr,x\n".encode(), "bad_quoting"
        elif k == 85:
            rec = f'{i},"quoted, one line",y\n'.encode()
        else:
            rec = f"{i},plain text number {i} déjà vu,l{i % 3}\n".encode()
        out.append(rec)
        line += rec.count(b"\n")
    return b"".join(out), expect


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
@pytest.mark.parametrize("batch_rows", [7, 500, T.BATCH_ROWS])
def test_mixed_file_same_both_ways(monkeypatch, chunk, batch_rows):
    monkeypatch.setattr(TL, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(TL, "SAMPLE_BYTES", min(chunk, TL.SAMPLE_BYTES))
    data, expect = _mixed_file()
    batches = _same(data, batch_rows=batch_rows)
    assert all(r.height + j.height <= batch_rows for r, j in batches)
    rej = _rejects(batches)
    got = {int(s.rsplit(":", 1)[1]): r for s, r in rej.select("source", "reason").rows()}
    assert got == expect
    rows = _rows(batches)
    blank_records = 3000 // 97 + (3000 % 97 > 60)
    assert rows.height + rej.height == 3000 - blank_records
    multi = rows.filter(pl.col("text").str.contains("\n"))
    assert multi.height > 0 and multi["text"][0] == 'multi\nline, with "quotes"\nend'


def test_fast_path_is_used_on_plain_runs(monkeypatch):
    calls = []
    real = TD._CsvParser._fast

    def spy(self, simple, start, end, first):
        calls.append(end - start)
        return real(self, simple, start, end, first)
    monkeypatch.setattr(TD._CsvParser, "_fast", spy)
    data, _ = _mixed_file()
    _same(data)
    assert sum(calls) > 2500          # nearly every line went through polars


@pytest.mark.parametrize("limit", [1, 5, 96, 97, 100, 2999, 5000])
def test_limit_same_both_ways(monkeypatch, limit):
    monkeypatch.setattr(TL, "CHUNK_BYTES", 1000)
    data, _ = _mixed_file(1000)
    batches = _same(data, batch_rows=64, limit=limit)
    assert _rows(batches).height == min(limit, _rows(_same(data)).height)


def test_bad_bytes_in_the_middle_of_a_big_file():
    lines = [b"a,b\n"] + [b"%d,row %d\n" % (i, i) for i in range(200_000)]
    lines[123_457] = b"x,\xff\xfe broken\n"
    batches = _same(b"".join(lines), T.CsvOptions(encoding="utf-8"))
    rej = _rejects(batches)
    assert rej.select("source", "reason").rows() == [("csv:m.csv:123458", "bad_encoding")]
    rows = _rows(batches)
    assert rows.height == 199_999 and rows["source"][-1] == "csv:m.csv:200001"


def test_quoted_newlines_across_block_boundaries(monkeypatch):
    monkeypatch.setattr(TL, "CHUNK_BYTES", 16)
    monkeypatch.setattr(TL, "SAMPLE_BYTES", 16)
    body = "k,v\n" + "".join(f'{i},"x\n{"y" * (i % 20)}\nz"\n' if i % 3 == 0 else f"{i},plain{i}\n"
                             for i in range(300))
    rows = _rows(_same(body.encode()))
    assert rows.height == 300
    assert rows["source"][:4].to_list() == ["csv:m.csv:2", "csv:m.csv:5", "csv:m.csv:6", "csv:m.csv:7"]


@pytest.mark.parametrize("opts", [
    dict(), dict(header=False), dict(header=False, columns=["a", "b", "c"]), dict(columns=["a", "b", "c"]),
    dict(quoting="none"), dict(delimiter=";", quotechar="'"), dict(delimiter="|", escapechar="\\"),
    dict(delimiter="\t", quoting="none"),
])
def test_dialects_same_both_ways(opts):
    sep = opts.get("delimiter", ",")
    lines = [f"h1{sep}h2{sep}h3"] + [f"{i}{sep}v{i}{sep}w" for i in range(50)]
    lines[10] = f"10{sep}'q{sep}uoted'{sep}\"dq\""
    lines[20] = f"20{sep}one\\{sep}escaped{sep}x"
    lines[30] = f"30{sep}two"
    lines[40] = ""
    rows = _rows(_same(("\n".join(lines) + "\n").encode(), T.CsvOptions(**opts)))
    assert rows.height >= 40


def test_tsv_with_bare_quotes_is_all_fast_and_same():
    data = (b"label\ttext\n" + b"".join(b'ham\tsay "hi" %d\n' % i for i in range(1000))
            + b"spam\tit's \"open\n")
    rows = _rows(_same(data, T.TsvOptions()))
    assert rows.height == 1001 and rows["text"][-1] == 'it\'s "open'


_ALPHABET = ["a", "b", "é", "\x00", "\ufeff", ",", ",", ";", '"', '"', "\n", "\n", "\n", "\r", "\r\n",
             " ", "\t", "\\", "'"]


@pytest.mark.parametrize("seed", range(40))
def test_random_inputs_same_both_ways(monkeypatch, seed):
    rnd = random.Random(seed)
    monkeypatch.setattr(TL, "CHUNK_BYTES", rnd.choice([8, 50, 4096]))
    monkeypatch.setattr(TL, "SAMPLE_BYTES", 64)
    text = "a,b,c\n" + "".join(rnd.choice(_ALPHABET) if rnd.random() < 0.3 else rnd.choice("xyz,")
                               for _ in range(rnd.randint(0, 3000)))
    data = text.encode()
    if seed % 5 == 0 and len(data) > 100:
        data = data[:50] + b"\xff" + data[50:]
    opts = rnd.choice([dict(), dict(quoting="none"), dict(header=False), dict(escapechar="\\"),
                       dict(delimiter=";", quotechar="'")])
    _same(data, T.CsvOptions(encoding="utf-8", **opts), batch_rows=rnd.choice([3, 50, 1000]),
          limit=rnd.choice([None, None, 5, 100]))


def test_field_limit_is_respected(monkeypatch):
    import csv
    old = csv.field_size_limit(100)
    try:
        data = b"a,b\n" + b"".join(b"%d,%s\n" % (i, b"x" * (i % 150)) for i in range(400))
        rej = _rejects(_same(data))
        assert rej.height == sum(1 for i in range(400) if i % 150 > 100)
        assert rej["detail"].str.starts_with("field larger than field limit (100)").all()
        assert set(rej["reason"]) == {"field_too_large"}
    finally:
        csv.field_size_limit(old)


_FIELDS = ["", "x", "a b", "é", '"q"', '"a,b"', '"x""y"', '"multi\nline"', '"bad"x', 'a"b', '"unclosed',
           ' "sp"', '"cr\rin"', '""', '"é, ü"', "\x00", "tab\there", '"""', '"\r\n"', "'s'"]


def _csvish(rnd: random.Random, n_lines: int, width: int = 3) -> bytes:
    """Records of random fields, mostly well formed, some quoted, a few broken."""
    out = [",".join("abcd"[:width])]
    for _ in range(n_lines):
        k = rnd.choice([width] * 4 + [width - 1, width + 1, 1])
        fields = [rnd.choice(_FIELDS) if rnd.random() < 0.4 else rnd.choice(["1", "two", '"3,3"'])
                  for _ in range(k)]
        out.append(",".join(fields) + rnd.choice(["\n", "\n", "\n", "\r\n"]))
    return "\n".join(out).encode()


@pytest.mark.parametrize("seed", range(60))
def test_random_quoted_records_same_both_ways(monkeypatch, seed):
    rnd = random.Random(1000 + seed)
    monkeypatch.setattr(TL, "CHUNK_BYTES", rnd.choice([40, 300, 1 << 20]))
    monkeypatch.setattr(TL, "SAMPLE_BYTES", 64)
    _same(_csvish(rnd, rnd.randint(1, 400), rnd.choice([1, 2, 3, 3])), batch_rows=rnd.choice([5, 64, 10_000]),
          limit=rnd.choice([None, None, 7, 150]))


def test_quoted_lines_use_the_fast_path(monkeypatch):
    data = b"a,b\n" + b"".join(b'%d,"text, with ""quotes"" %d"\n' % (i, i) for i in range(5000))
    calls = []
    real = TD._CsvParser._split_quoted
    def spy(self, *a):
        calls.append(1)
        return real(self, *a)
    monkeypatch.setattr(TD._CsvParser, "_split_quoted", spy)
    rows = _rows(_same(data))
    assert calls and rows.height == 5000 and rows["b"][1] == 'text, with "quotes" 1'


def test_polars_failure_falls_back_to_the_csv_module(monkeypatch):
    def boom(*a, **k):
        raise pl.exceptions.ComputeError("simulated")
    monkeypatch.setattr(TD.pl, "read_csv", boom)
    data = b"a,b\n" + b"".join(b'%d,"q %d"\n' % (i, i) if i % 2 else b"%d,p\n" % i for i in range(300))
    rows = _rows(_same(data))
    assert rows.height == 300 and rows["b"][:2].to_list() == ["p", "q 1"]
