"""Hostile files through every reader, each case in a child process with a time and memory limit
(see conftest.py). Each case names the input class and what it must get: quarantined rows with a
stated reason (and detail text), a per-file note in the source stats, or a named error.

Classes: files that are not what their name says; corrupt and truncated compression; newline-free
streams and decompression bombs; deep nesting; integers beyond 64 bits; NaN/Infinity; mixed
encodings; ragged and binary text; truncated and mislabelled Parquet; broken NI task files.
"""
from __future__ import annotations

import textwrap

import pytest

# Child side: build the input in the working folder (setup code), read it with the real source
# class from the registry, report rows, rejects (source, reason, detail) and the source's stats.
MODULES = {"csv": "curate.connectors.files.delimited", "tsv": "curate.connectors.files.delimited",
           "jsonl": "curate.connectors.files.jsonl", "json": "curate.connectors.files.jsondoc",
           "parquet": "curate.connectors.files.parquet", "s3": "curate.connectors.s3",
           "natural_instructions": "curate.connectors.natural_instructions"}
# the source's own module only (registry discovery would import every step: slower children)
SOURCE = "import importlib\nfrom curate import registry\nimportlib.import_module({module!r})\n" \
         "src_cls = registry._REGISTRIES['source'][{kind!r}]\n"
READ = """
import os
{source}
{setup}
src = src_cls({config!r})
rows, rejects, values = 0, [], []
for b in src.read():
    rows += b.rows.height
    if b.rows.height:
        values += b.rows.drop("source").to_dicts()[:5]
    if b.rejected.height:
        rejects += [list(r) for r in b.rejected.select("source", "reason", "detail").rows()]
result = {{"rows": rows, "rejects": rejects, "stats": src.stats, "values": values[:5]}}
"""


def read_case(isolated, tmp_path, kind: str, setup: str, timeout: float = 60, mem_mb: int = 1536,
              **config):
    """Run ``setup`` (writes the input under the child's cwd) then read it with source ``kind``."""
    source = SOURCE.format(module=MODULES[kind], kind=kind)
    code = READ.format(source=source, setup=textwrap.dedent(setup), config=config)
    res = isolated(code, timeout=timeout, mem_mb=mem_mb, cwd=str(tmp_path)).ok()
    return res.result, res


def reasons(out) -> list[str]:
    return [r[1] for r in out["rejects"]]


def file_stats(out, path: str) -> dict:
    return out["stats"]["files"][path]


# ------------------------------------------------------------------ not what the name says
@pytest.mark.parametrize("kind,name,body", [
    ("jsonl", "x.jsonl.gz", b'{"a": 1}\n{"a": 2}\n'),
    ("csv", "x.csv.gz", b"a,b\n1,2\n"),
    ("tsv", "x.tsv.gz", b"a\tb\n1\t2\n"),
    ("json", "x.json.gz", b'[{"a": 1}]'),
])
def test_plain_text_named_gz_is_quarantined_naming_the_file(isolated, tmp_path, kind, name, body):
    """Class: plain text named *.gz. Gets: one `bad_compression` row naming the file; no rows."""
    out, _ = read_case(isolated, tmp_path, kind, f"open({name!r}, 'wb').write({body!r})", path=name)
    assert out["rows"] == 0 and reasons(out) == ["bad_compression"]
    src, _, detail = out["rejects"][0]
    assert name in src and "the name says gzip but the content is not gzip-compressed" in detail


def test_compressed_file_without_a_suffix_is_sniffed(isolated, tmp_path):
    """Class: bz2 / xz / gzip bytes named plain .jsonl/.csv. Gets: read by magic bytes, noted."""
    out, _ = read_case(isolated, tmp_path, "jsonl", """
        import bz2, lzma, gzip
        open("a.jsonl", "wb").write(bz2.compress(b'{"a": 1}\\n' * 10))
        open("b.jsonl", "wb").write(lzma.compress(b'{"a": 2}\\n' * 10))
        open("c.jsonl", "wb").write(gzip.compress(b'{"a": 3}\\n' * 10))
    """, path=["a.jsonl", "b.jsonl", "c.jsonl"])
    assert out["rows"] == 30 and out["rejects"] == []
    assert [file_stats(out, p)["compression"] for p in ("a.jsonl", "b.jsonl", "c.jsonl")] == ["bz2", "xz", "gzip"]


def test_text_that_starts_like_bz2_magic_is_still_text(isolated, tmp_path):
    """Class: a CSV whose header starts with "BZh". Gets: read as text (bz2 needs its block marker)."""
    out, _ = read_case(isolated, tmp_path, "csv", "open('b.csv', 'wb').write(b'BZh9,x\\n1,2\\n')", path="b.csv")
    assert out["rows"] == 1 and out["values"] == [{"BZh9": "1", "x": "2"}]


# ------------------------------------------------------------------ corrupt compression
def test_truncated_gzip_is_quarantined_after_its_good_lines(isolated, tmp_path):
    """Class: a .jsonl.gz cut short. Gets: the lines before the cut, then one `bad_compression`."""
    out, _ = read_case(isolated, tmp_path, "jsonl", """
        import gzip, os
        data = gzip.compress(b"".join(b'{"i": %d, "pad": "%s"}\\n' % (i, os.urandom(40).hex().encode())
                                      for i in range(40000)))
        open("t.jsonl.gz", "wb").write(data[:len(data) * 3 // 4])
    """, path="t.jsonl.gz")
    # the line cut in half is `invalid_json`; the rest of the stream one `bad_compression`
    assert 0 < out["rows"] < 40000 and reasons(out)[-1] == "bad_compression"
    assert set(reasons(out)[:-1]) <= {"invalid_json"} and out["rows"] + len(out["rejects"]) > 20000
    assert "corrupt or truncated" in out["rejects"][-1][2]


def test_corrupt_gzip_body_is_quarantined(isolated, tmp_path):
    """Class: garbage in the middle of a gzip stream. Gets: `bad_compression` (zlib's error in detail)."""
    out, _ = read_case(isolated, tmp_path, "csv", """
        import gzip, os
        data = bytearray(gzip.compress(b"a,b\\n" + b"".join(b"%d,%s\\n" % (i, os.urandom(30).hex().encode())
                                                          for i in range(30000))))
        data[len(data) // 2: len(data) // 2 + 64] = b"\\xff" * 64
        open("c.csv.gz", "wb").write(bytes(data))
    """, path="c.csv.gz")
    assert "bad_compression" in reasons(out) and out["rows"] < 30000
    assert "gzip stream is corrupt or truncated" in out["rejects"][-1][2]


# ------------------------------------------------------------------ newline-free / bombs
@pytest.mark.slow
def test_gzip_of_200mb_of_zeros_is_bounded(isolated, tmp_path):
    """Class: newline-free decompression bomb (200 MiB of zeros, ~200 KB gzipped).
    Gets: `too_large` after reading at most max_record_bytes of the line; seconds, not minutes;
    memory bounded (the child is capped at 1 GiB of address space)."""
    out, res = read_case(isolated, tmp_path, "jsonl", """
        import gzip
        with gzip.open("z.jsonl.gz", "wb", compresslevel=1) as f:
            block = bytes(1 << 20)
            for _ in range(200):
                f.write(block)
    """, timeout=90, mem_mb=1024, path="z.jsonl.gz")
    assert out["rows"] == 0 and reasons(out)[0] == "too_large"
    assert "over 16777216 bytes (max_record_bytes)" in out["rejects"][0][2]
    assert res.peak_mb < 400


@pytest.mark.slow
def test_compression_ratio_bound(isolated, tmp_path):
    """Class: decompression bomb with newlines (100 lines of 1 MiB, ~100 KiB gzipped). Gets: the
    rows read up to the bound, then `compression_ratio` (max_compression_ratio: 100)."""
    out, res = read_case(isolated, tmp_path, "jsonl", """
        import gzip
        line = b'{"a": "' + b"x" * ((1 << 20) - 10) + b'"}\\n'
        with gzip.open("r.jsonl.gz", "wb", compresslevel=1) as f:
            for _ in range(100):
                f.write(line)
    """, timeout=90, path="r.jsonl.gz", max_compression_ratio=100)
    # a line cut by the bound is `invalid_json` (as in a truncated stream), then the bound's row
    assert reasons(out)[-1] == "compression_ratio" and set(reasons(out)[:-1]) <= {"invalid_json"}
    assert 50 < out["rows"] < 100
    assert "a decompression bomb?" in out["rejects"][-1][2]


def test_newline_free_plain_csv(isolated, tmp_path):
    """Class: one 40 MiB line without a newline in a plain CSV. Gets: `too_large`, the next lines read."""
    out, res = read_case(isolated, tmp_path, "csv", """
        with open("n.csv", "wb") as f:
            f.write(b"a,b\\n")
            for _ in range(40):
                f.write(b"x" * (1 << 20))
            f.write(b"\\n1,2\\n")
    """, path="n.csv")
    assert reasons(out) == ["too_large"] and out["rows"] == 1
    assert out["rejects"][0][0] == "csv:n.csv:2"
    assert res.peak_mb < 400


def test_record_bound_is_configurable(isolated, tmp_path):
    """Class: a 3 KB line with max_record_bytes: 1024. Gets: `too_large`; the short lines are rows."""
    out, _ = read_case(isolated, tmp_path, "jsonl", """
        open("l.jsonl", "wb").write(b'{"a": "' + b"x" * 3000 + b'"}\\n{"a": 2}\\n')
    """, path="l.jsonl", max_record_bytes=1024)
    assert out["rows"] == 1 and out["rejects"] == [["jsonl:l.jsonl:1", "too_large",
                                                    "record over 1024 bytes (max_record_bytes): 3010 bytes skipped"]]


def test_unclosed_quote_does_not_swallow_a_big_csv(isolated, tmp_path):
    """Class: a stray quote before 200,000 lines. Gets: one `bad_quoting`/`field_too_large` row,
    every other line a row (parsing restarts after the broken record)."""
    out, _ = read_case(isolated, tmp_path, "csv", """
        open("q.csv", "wb").write(b"a,b\\n" + b'1,"open\\n' + b"".join(b"%d,v\\n" % i for i in range(200000)))
    """, path="q.csv")
    assert out["rows"] == 200000 and len(out["rejects"]) == 1
    assert reasons(out)[0] in ("bad_quoting", "field_too_large")


def test_utf16_line_over_the_bound(isolated, tmp_path):
    """Class: UTF-16 TSV with a newline-free tail. Gets: the lines before it, then `too_large`."""
    out, _ = read_case(isolated, tmp_path, "tsv", """
        open("u.tsv", "wb").write(("a\\tb\\n1\\t2\\n" + "y" * 5000).encode("utf-16"))
    """, path="u.tsv", max_record_bytes=1024)
    assert out["rows"] == 1 and reasons(out) == ["too_large"]


# ------------------------------------------------------------------ JSON values
def test_jsonl_nested_10000_deep(isolated, tmp_path):
    """Class: one JSONL line nested 10,000 deep. Gets: `too_deep` (no RecursionError); next line a row."""
    out, _ = read_case(isolated, tmp_path, "jsonl", """
        open("d.jsonl", "wb").write(b'{"a": ' + b"[" * 10000 + b"]" * 10000 + b'}\\n{"a": 1}\\n')
    """, path="d.jsonl")
    assert out["rows"] == 1 and out["rejects"] == [["jsonl:d.jsonl:1", "too_deep", "nested more than 64 levels"]]


def test_jsonl_nested_just_past_the_bound(isolated, tmp_path):
    """Class: 100-deep objects (orjson accepts them; polars would crawl). Gets: `too_deep`."""
    out, _ = read_case(isolated, tmp_path, "jsonl", """
        open("d.jsonl", "wb").write(b'{"a": ' * 100 + b"1" + b"}" * 100 + b'\\n{"b": ' * 1 + b'{"c": 1}}\\n')
    """, path="d.jsonl")
    assert out["rows"] == 1 and reasons(out) == ["too_deep"]


def test_json_document_nested_10000_deep(isolated, tmp_path):
    """Class: a JSON document nested 10,000 deep. Gets: one `too_deep` row for the document."""
    out, _ = read_case(isolated, tmp_path, "json", "open('d.json', 'wb').write(b'[' * 10000 + b']' * 10000)",
                       path="d.json")
    assert out["rows"] == 0 and out["rejects"] == [["json:d.json", "too_deep", "nested more than 64 levels"]]


def test_json_array_item_too_deep_only_that_item(isolated, tmp_path):
    """Class: one deep item in a JSON array. Gets: that item `too_deep`, the others rows."""
    out, _ = read_case(isolated, tmp_path, "json", """
        open("i.json", "wb").write(b'[{"a": 1}, {"b": ' + b"[" * 80 + b"]" * 80 + b'}, {"a": 3}]')
    """, path="i.json")
    assert out["rows"] == 2 and out["rejects"] == [["json:i.json:1", "too_deep", "nested more than 64 levels"]]


def test_json_document_over_its_bound(isolated, tmp_path):
    """Class: a JSON document over max_document_bytes. Gets: `too_large` after reading the bound."""
    out, _ = read_case(isolated, tmp_path, "json", """
        open("big.json", "wb").write(b"[" + b",".join([b'{"a": 1}'] * 1000) + b"]")
    """, path="big.json", max_document_bytes=2048)
    assert out["rows"] == 0 and reasons(out) == ["too_large"]
    assert "over 2048 bytes (max_document_bytes" in out["rejects"][0][2]


def test_integers_beyond_64_bits_stay_exact(isolated, tmp_path):
    """Class: integers beyond 64 bits (orjson would make them floats). Gets: exact decimal text,
    counted as `big_ints_as_text` in the file's stats."""
    out, _ = read_case(isolated, tmp_path, "jsonl", """
        open("b.jsonl", "wb").write(b'{"id": 123456789012345678901234567890, "t": "x"}\\n'
                                    b'{"id": -98765432109876543210, "t": "y"}\\n{"id": 7, "t": "z"}\\n')
    """, path="b.jsonl")
    assert [v["id"] for v in out["values"]] == ["123456789012345678901234567890", "-98765432109876543210", "7"]
    assert file_stats(out, "b.jsonl")["big_ints_as_text"] == 2


def test_nan_and_infinity_become_null_and_are_counted(isolated, tmp_path):
    """Class: bare NaN / Infinity / 1e400 in text and number fields. Gets: null (never the text
    "NaN"), counted as `non_finite_to_null` in the file's stats."""
    out, _ = read_case(isolated, tmp_path, "jsonl", """
        open("n.jsonl", "wb").write(b'{"text": NaN, "v": 1}\\n{"text": "ok", "v": -Infinity}\\n{"text": "x", "v": 1e400}\\n')
    """, path="n.jsonl")
    assert out["rows"] == 3 and [v["text"] for v in out["values"]] == [None, "ok", "x"]
    assert [v["v"] for v in out["values"]] == [1.0, None, None]
    assert file_stats(out, "n.jsonl")["non_finite_to_null"] == 3


# ------------------------------------------------------------------ encodings
def test_mixed_cp1252_and_utf8_lines(isolated, tmp_path):
    """Class: a cp1252 CSV with UTF-8 lines further down (past the 64 KiB sample) and a byte cp1252
    cannot decode. Gets: the encoding recorded per file, UTF-8 lines decoded as UTF-8 and counted
    (`utf8_fallback_lines`), the undecodable line quarantined as `bad_encoding`."""
    out, _ = read_case(isolated, tmp_path, "csv", """
        body = "name\\n".encode() + "café crème\\n".encode("cp1252") * 8000
        body += "naïve über\\n".encode("utf-8") * 3 + b"\\x81 undefined in cp1252\\n"
        open("m.csv", "wb").write(body)
    """, path="m.csv")
    st = file_stats(out, "m.csv")
    assert st["encoding"] == "cp1252" and st["utf8_fallback_lines"] == 3
    assert out["rows"] == 8003 and reasons(out) == ["bad_encoding"]
    assert "byte 0x81" in out["rejects"][0][2]


def test_bad_utf8_line_in_utf8_file(isolated, tmp_path):
    """Class: one invalid UTF-8 line in a UTF-8 JSONL. Gets: `bad_encoding` with the byte offset."""
    out, _ = read_case(isolated, tmp_path, "jsonl", """
        open("u.jsonl", "wb").write('{"t": "é"}\\n'.encode() + b'{"t": "\\xc3\\x28"}\\n' + b'{"t": "ok"}\\n')
    """, path="u.jsonl")
    assert out["rows"] == 2 and reasons(out) == ["bad_encoding"] and "byte offset 19" in out["rejects"][0][2]
    assert file_stats(out, "u.jsonl")["encoding"] == "utf-8"


@pytest.mark.parametrize("kind,name", [("jsonl", "s.jsonl"), ("json", "s.json")])
def test_lone_surrogate_escapes(isolated, tmp_path, kind, name):
    """Class: JSON string escapes of unpaired UTF-16 surrogates (in a value, a key, nested, next to
    NaN so the stdlib parser is used) beside a valid pair. Gets: `invalid_json` naming the
    surrogate for each bad record; the pair (an emoji) is read."""
    recs = ['{"t": "ok"}', '{"t": "bad \\ud800 x"}', '{"\\udc00": 1}', '{"t": ["a", {"u": "\\udbff"}]}',
            '{"t": "x", "n": NaN, "u": "\\ud801"}', '{"t": "\\ud83d\\ude00"}']
    body = "\n".join(recs) if kind == "jsonl" else "[" + ",".join(recs[:2]) + "]"
    out, _ = read_case(isolated, tmp_path, kind, f"open({name!r}, 'w').write({body!r})", path=name)
    assert out["rows"] == (2 if kind == "jsonl" else 0)
    assert reasons(out) == ["invalid_json"] * (4 if kind == "jsonl" else 1)
    assert all("surrogate" in r[2] for r in out["rejects"])
    if kind == "jsonl":
        assert [v["t"] for v in out["values"]] == ["ok", "\U0001F600"]


def test_random_binary_as_jsonl(isolated, tmp_path):
    """Class: 2 MiB of random bytes named .jsonl. Gets: only quarantined lines (no rows, no error)."""
    out, _ = read_case(isolated, tmp_path, "jsonl", """
        import random
        open("r.jsonl", "wb").write(random.Random(1).randbytes(2 << 20))
    """, path="r.jsonl")
    assert out["rows"] == 0 and len(out["rejects"]) > 1000
    assert set(reasons(out)) <= {"bad_encoding", "invalid_json", "not_an_object"}


def test_nul_bytes_in_csv(isolated, tmp_path):
    """Class: NUL bytes inside CSV fields. Gets: rows (NUL kept as text), never a crash."""
    out, _ = read_case(isolated, tmp_path, "csv", "open('z.csv', 'wb').write(b'a,b\\n1,x\\x00y\\n2,\"q\\x00\"\\n')",
                       path="z.csv")
    assert out["rows"] + len(out["rejects"]) == 2


def test_ragged_tsv(isolated, tmp_path):
    """Class: TSV rows with too many and too few fields. Gets: `wrong_field_count` with the counts."""
    out, _ = read_case(isolated, tmp_path, "tsv", "open('r.tsv', 'wb').write(b'a\\tb\\n1\\t2\\n1\\t2\\t3\\n1\\n')",
                       path="r.tsv")
    assert out["rows"] == 1 and [r[2] for r in out["rejects"]] == ["expected 2 fields, got 3", "expected 2 fields, got 1"]


# ------------------------------------------------------------------ Parquet
PARQUET = """
import io, polars as pl
buf = io.BytesIO()
pl.DataFrame({"a": list(range(20000)), "t": ["x" * 20] * 20000}).write_parquet(buf, row_group_size=2000)
data = buf.getvalue()
"""


@pytest.mark.parametrize("case,mutate,reason_text", [
    ("truncated", "data[:len(data) // 2]", "not Parquet"),
    ("wrong_magic", "b'{\"a\": 1}\\n' * 100", "not Parquet"),
    ("footer_length_garbage", "data[:-8] + b'\\xff\\xff\\xff\\x7fPAR1'", "not Parquet"),
    ("empty", "b''", "not Parquet"),
])
def test_broken_parquet(isolated, tmp_path, case, mutate, reason_text):
    """Class: truncated / not Parquet / corrupt footer / empty *.parquet. Gets: one `unreadable_file`."""
    out, _ = read_case(isolated, tmp_path, "parquet", PARQUET + f"open('p.parquet', 'wb').write({mutate})\n",
                       path="p.parquet")
    assert out["rows"] == 0 and reasons(out) == ["unreadable_file"] and reason_text in out["rejects"][0][2]


def test_parquet_with_a_corrupt_page(isolated, tmp_path):
    """Class: Parquet whose data pages are overwritten with junk. Gets: the readable row groups,
    then `unreadable_file` naming the row where decoding stopped (or rows, never a traceback)."""
    out, _ = read_case(isolated, tmp_path, "parquet", PARQUET + """
        mid = len(data) // 2
        open("p.parquet", "wb").write(data[:mid] + b"\\xff" * 4096 + data[mid + 4096:])
    """.replace("\n        ", "\n"), path="p.parquet")
    assert out["rows"] + 2000 * len(out["rejects"]) <= 20000
    assert set(reasons(out)) <= {"unreadable_file"}


# ------------------------------------------------------------------ NI task files
@pytest.mark.parametrize("body,text", [
    (b'{"Instances": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    (b"\x00\x01 not json", "not valid JSON"),
])
def test_broken_ni_task_file(isolated, tmp_path, body, text):
    """Class: NI task file nested 5,000 deep / binary. Gets: a DataError naming the file."""
    res = isolated(f"""
        from curate.connectors.natural_instructions import NaturalInstructionsSource
        from curate.errors import CurateError
        open("task1_x.json", "wb").write({body!r})
        try:
            list(NaturalInstructionsSource({{"path": "task1_x.json"}}).read())
        except CurateError as e:
            result = str(e)
    """, cwd=str(tmp_path)).ok()
    assert "task1_x.json" in res.result and text in res.result


# ------------------------------------------------------------------ S3
@pytest.mark.slow
def test_s3_object_named_gz_that_is_plain_text(isolated, tmp_path):
    """Class: an S3 object `*.jsonl.gz` holding plain text (moto in the child). Gets: one
    `bad_compression` row naming s3://bucket/key; the good object next to it is read."""
    res = isolated("""
        import os, gzip
        os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y", AWS_DEFAULT_REGION="us-east-1")
        from moto import mock_aws
        with mock_aws():
            import boto3
            c = boto3.client("s3", region_name="us-east-1")
            c.create_bucket(Bucket="bkt")
            c.put_object(Bucket="bkt", Key="d/bad.jsonl.gz", Body=b'{"a": 1}\\n')
            c.put_object(Bucket="bkt", Key="d/good.jsonl.gz", Body=gzip.compress(b'{"a": 2}\\n'))
            from curate.connectors.s3 import S3Source
            src = S3Source({"url": "s3://bkt/d/*.jsonl.gz"})
            rows, rej = 0, []
            for b in src.read():
                rows += b.rows.height
                if b.rejected.height:
                    rej += [list(r) for r in b.rejected.select("source", "reason", "detail").rows()]
            result = {"rows": rows, "rejects": rej, "stats": src.stats}
    """, cwd=str(tmp_path)).ok()
    out = res.result
    assert out["rows"] == 1 and [r[:2] for r in out["rejects"]] == [["s3://bkt/d/bad.jsonl.gz:1", "bad_compression"]]
    assert out["stats"]["files"]["s3://bkt/d/good.jsonl.gz"]["compression"] == "gzip"


def test_mojibake_lines_are_counted(isolated, tmp_path):
    """Class: a UTF-8 file with lines that were UTF-8 misread as cp1252 upstream ("cafÃ©",
    "Ð¿Ñ€Ð¸Ð²ÐµÑ‚"). Gets: rows kept (the clean step's fix_unicode repairs them), counted as
    `mojibake_lines` in the file's stats; correct accented text is not counted."""
    out, _ = read_case(isolated, tmp_path, "jsonl", """
        lines = ['{"t": "café crème"}', '{"t": "cafÃ© crÃ¨me"}', '{"t": "Ð¿Ñ€Ð¸Ð²ÐµÑ‚"}', '{"t": "São Paulo"}']
        open("m.jsonl", "w", encoding="utf-8").write("\\n".join(lines * 100) + "\\n")
    """, path="m.jsonl")
    assert out["rows"] == 400 and out["rejects"] == []
    assert file_stats(out, "m.jsonl")["mojibake_lines"] == 200
