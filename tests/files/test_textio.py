"""The reusable parsers in curate.connectors._textio, driven directly with in-memory streams the way the
S3 connector uses them (binary file object + locator prefix)."""
from __future__ import annotations

import gzip
import io

import polars as pl
import pytest

from curate.connectors import _textio as T
from curate.connectors._textio import lines as TL
from curate.errors import DataError


class _Stream(io.RawIOBase):
    """A non-seekable stream returning short reads, like a network body."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self.data, self.pos, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b) -> int:  # type: ignore[override]
        chunk = self.data[self.pos:self.pos + min(len(b), self.step)]
        b[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


def _all(batches) -> tuple[pl.DataFrame, pl.DataFrame]:
    batches = list(batches)
    rows = pl.concat([b.rows for b in batches if b.rows.width], how="diagonal_relaxed") \
        if any(b.rows.width for b in batches) else pl.DataFrame()
    rej = pl.concat([b.rejected for b in batches if b.rejected.height]) \
        if any(b.rejected.height for b in batches) else pl.DataFrame()
    return rows, rej


def test_iter_csv_streams_in_bounded_batches():
    data = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(10)) + b"1,2,3\n"
    batches = list(T.iter_csv(io.BufferedReader(_Stream(data)), "s3://bkt/k.csv", T.CsvOptions(),
                              "s3", batch_rows=4))
    assert len(batches) == 3 and all(b.rows.height + b.rejected.height <= 4 for b in batches)
    rows, rej = _all(batches)
    assert rows["a"].to_list() == [str(i) for i in range(10)]
    assert rows["source"][0] == "s3://bkt/k.csv:2" and rows["source"][-1] == "s3://bkt/k.csv:11"
    assert rej.row(0, named=True) | {} == {"source": "s3://bkt/k.csv:12", "origin": "s3", "step": "source:s3",
                                           "reason": "wrong_field_count", "detail": "expected 2 fields, got 3",
                                           "raw": "1,2,3"}


def test_line_numbers_and_offsets_across_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(TL, "CHUNK_BYTES", 5)
    monkeypatch.setattr(TL, "SAMPLE_BYTES", 8)
    lines = ["ünï " * 3 + str(i) for i in range(40)]
    body = "\n".join(lines).encode()          # no final newline
    bad_at = body.index(b"20")
    body = body[:bad_at] + b"\xff" + body[bad_at + 1:]
    got = list(T.iter_lines(io.BytesIO(body), "x", "utf-8"))
    assert [ln.no for ln in got] == list(range(1, 41))
    assert [ln.text.rstrip("\n") for ln in got if not ln.error] == [s for i, s in enumerate(lines) if i != 20]
    (bad,) = [ln for ln in got if ln.error]
    assert bad.no == 21 and bad.error.reason == "bad_encoding" and f"byte offset {bad_at}" in bad.error.detail


@pytest.mark.parametrize("bad", [b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2\x82"],
                         ids=["ff", "surrogate", "overlong", "past_max", "truncated"])
def test_arrow_utf8_check_flags_what_decode_flags(monkeypatch, bad):
    """Blocks checked by Arrow (decoded only when asked) give the lines, errors and mojibake
    counts of a plain decode: every block through Arrow, then none."""
    lines = [f"row {i} ünï" if i % 5 else f"row {i} CafÃ© â€” mojibake" for i in range(60)]
    body = "\n".join(lines).encode() + b"\n"
    at = body.index(b"row 33 ")
    body = body[:at] + b"row 33 " + bad + body[at + 7:]
    got = {}
    for check in (1, 1 << 40):
        monkeypatch.setattr(TL, "CHUNK_BYTES", 64)
        monkeypatch.setattr(TL, "_ARROW_CHECK_BYTES", check)
        info: dict = {}
        res = [(b.first, b.lines, dict(b.errors)) for b in T.iter_blocks(io.BytesIO(body), "x", "utf-8", info=info)]
        got[check] = (res, info)
    assert got[1] == got[1 << 40]
    res, info = got[1]
    errors = {no: e.reason for _, _, errs in res for no, e in errs.items()}
    assert errors == {34: "bad_encoding"} and info["mojibake_lines"] == 12
    monkeypatch.setattr(TL, "_ARROW_CHECK_BYTES", 1)
    assert TL._valid_utf8(("é" * 2000).encode()) and not TL._valid_utf8(b"a" * 3000 + bad)


def test_gzip_by_name_and_by_magic():
    data = gzip.compress(b'{"a": 1}\n{"a": 2}\n')
    rows, _ = _all(T.iter_jsonl(io.BytesIO(data), "jsonl:x.jsonl.gz", T.JsonlOptions(), "o"))
    assert rows["a"].to_list() == [1, 2]
    rows, _ = _all(T.iter_jsonl(io.BufferedReader(_Stream(data)), "s3://b/obj", T.JsonlOptions(), "o"))
    assert rows["a"].to_list() == [1, 2] and rows["source"].to_list() == ["s3://b/obj:1", "s3://b/obj:2"]


def test_utf16_input():
    data = "text\nhé\nwörld\n".encode("utf-16")
    rows, _ = _all(T.iter_csv(io.BytesIO(data), "csv:u16.csv", T.CsvOptions(), "o"))
    assert rows["text"].to_list() == ["hé", "wörld"]


def test_parquet_from_non_seekable_stream(tmp_path):
    p = tmp_path / "a.parquet"
    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(p)
    rows, _ = _all(T.iter_parquet(io.BufferedReader(_Stream(p.read_bytes(), 1000)), "s3://b/a.parquet",
                                  T.ParquetOptions(), "o", batch_rows=2))
    assert rows["x"].to_list() == [1, 2, 3] and rows["source"][2] == "s3://b/a.parquet:2"


def test_json_from_stream_with_records_key():
    data = b'{"data": [{"q": "a"}, {"q": "b"}]}'
    rows, _ = _all(T.iter_json(io.BytesIO(data), "https://h/x.json", T.JsonOptions(records_key="data"), "o"))
    assert rows["source"].to_list() == ["https://h/x.json:0", "https://h/x.json:1"]


def test_format_for_and_dispatch():
    assert T.format_for("s3://b/a/x.CSV.gz") == "csv"
    assert T.format_for("data.jsonl") == "jsonl" and T.format_for("x.ndjson") == "ndjson"
    assert T.format_for("x.parquet") == "parquet" and T.format_for("README") is None
    rows, _ = _all(T.iter_format("tsv", io.BytesIO(b"a\tb\n1\t2\n"), "t", T.TsvOptions(), "o"))
    assert rows.select("a", "b").rows() == [("1", "2")]
    with pytest.raises(DataError, match="unknown format 'xml'"):
        T.iter_format("xml", io.BytesIO(b""), "t", None, "o")


def test_detect_encoding():
    assert T.detect_encoding(b"\xef\xbb\xbfabc") == ("utf-8", 3)
    assert T.detect_encoding("plain ascii".encode()) == ("utf-8", 0)
    assert T.detect_encoding("ça va très bien\n".encode() * 3 + "é".encode()[:1]) == ("utf-8", 0)  # cut char
    assert T.detect_encoding(("Größe und Übermaß für Jürgen, ça va très bien\n" * 20).encode("latin-1"))[0] \
        == "cp1252"


def test_csv_records_spanning_blocks(monkeypatch):
    """Quoted newlines, a stray quote and bad bytes land on block boundaries (tiny blocks)."""
    monkeypatch.setattr(TL, "CHUNK_BYTES", 6)
    monkeypatch.setattr(TL, "SAMPLE_BYTES", 5)
    text = ('k,text\n'
            '1,"a\nlong\nquoted\nfield, with comma"\n'        # lines 2-5
            '2,"stray\n'                                       # line 6: never closed
            '3,plain\n'                                        # line 7
            '4,"x""y"\n')                                      # line 8
    body = text.encode() + b"5,\xff\n" + b'6,"last\nline"\n'   # lines 9 and 10-11
    rows, rej = _all(T.iter_csv(io.BytesIO(body), "csv:b.csv", T.CsvOptions(encoding="utf-8"), "o",
                                batch_rows=2))
    assert rows.select("k", "source").rows() == [("1", "csv:b.csv:2"), ("3", "csv:b.csv:7"),
                                                 ("4", "csv:b.csv:8"), ("6", "csv:b.csv:10")]
    assert rows["text"][0] == "a\nlong\nquoted\nfield, with comma" and rows["text"][3] == "last\nline"
    assert dict(rej.select("source", "reason").rows()) == {"csv:b.csv:6": "bad_quoting",
                                                           "csv:b.csv:9": "bad_encoding"}


def test_limit_across_files(tmp_path):
    from curate.connectors.files.delimited import CsvSource
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.csv").write_text("x\n1\n2\n")
    src = CsvSource(path=str(tmp_path / "*.csv"), limit=3)
    got = pl.concat([b.rows for b in src.read()])
    assert got["source"].to_list() == [f"csv:{tmp_path / 'a.csv'}:2", f"csv:{tmp_path / 'a.csv'}:3",
                                       f"csv:{tmp_path / 'b.csv'}:2"]
