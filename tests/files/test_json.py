"""JSONL and JSON sources: types kept, malformed lines quarantined, records_key, shipped samples."""
from __future__ import annotations

import json

import polars as pl
import pytest

from curate.errors import DataError


def test_jsonl_keeps_types_and_nesting(write, run_source):
    p = write("a.jsonl", '{"text": "a", "n": 1, "tags": ["x", "y"], "meta": {"k": 1.5}}\n'
                         '{"text": "b", "n": 2, "tags": [], "meta": {"k": null}}\n')
    df = run_source("jsonl", path=p).data()
    assert df.schema["n"] == pl.Int64
    assert df["tags"].to_list() == [["x", "y"], []]
    assert df["meta"].to_list() == [{"k": 1.5}, {"k": None}]
    assert df["source"].to_list() == [f"jsonl:{p}:1", f"jsonl:{p}:2"]


def test_jsonl_malformed_lines_are_quarantined(write, run_source, by_locator):
    p = write("b.jsonl", '{"text": "ok"}\n'
                         '\n'
                         '{"text": "broken",\n'
                         '["an", "array"]\n'
                         '   \n'
                         '"just a string"\n'
                         '{"text": "nan", "score": NaN}\n')
    r = run_source("jsonl", path=p)
    df = r.data()
    assert df["text"].to_list() == ["ok", "nan"]
    assert df["source"].to_list() == [f"jsonl:{p}:1", f"jsonl:{p}:7"]
    got = by_locator(r.rejects())
    assert set(got) == {f"jsonl:{p}:3", f"jsonl:{p}:4", f"jsonl:{p}:6"}
    assert got[f"jsonl:{p}:3"][0] == "invalid_json" and "Expecting" in got[f"jsonl:{p}:3"][1]
    assert got[f"jsonl:{p}:4"] == ("not_an_object", "expected a JSON object, got an array")
    assert got[f"jsonl:{p}:6"] == ("not_an_object", "expected a JSON object, got a string")
    raw = dict(r.rejects().select("source", "raw").rows())
    assert raw[f"jsonl:{p}:3"] == '{"text": "broken",'
    # accounting: rows + rejects = non-blank lines
    assert df.height + r.rejects().height == 5


def test_jsonl_bad_utf8(write, run_source, by_locator):
    body = '{"text": "héllo"}\n'.encode() + b'{"text": "bad \xc3\x28"}\n' + '{"text": "ünï"}\n'.encode()
    p = write("c.jsonl", body)
    r = run_source("jsonl", path=p)
    assert r.data()["text"].to_list() == ["héllo", "ünï"]
    reason, detail = by_locator(r.rejects())[f"jsonl:{p}:2"]
    offset = body.index(b"\xc3\x28")
    assert reason == "bad_encoding" and f"byte offset {offset}" in detail


def test_jsonl_long_raw_is_truncated(write, run_source):
    p = write("long.jsonl", '{"a": "' + "x" * 2000 + '"\n')
    raw = run_source("jsonl", path=p).rejects()["raw"][0]
    assert 500 <= len(raw) <= 501


def test_jsonl_mixed_types_across_rows_do_not_fail(write, run_source):
    p = write("m.jsonl", '{"v": [1, 2]}\n{"v": {"k": 1}}\n{"v": null}\n{"w": 3}\n')
    df = run_source("jsonl", path=p).data()
    assert df.height == 4 and df["w"].to_list() == [None, None, None, 3]
    assert json.loads(df["v"][1]) == {"k": 1}
    # an int then an object: polars would null the int; the column becomes JSON text instead
    # (NaN makes the line go through the stdlib parser, which keeps big ints exact)
    p2 = write("m2.jsonl", '{"v": 1, "big": 1}\n{"v": {"k": 1}, "big": 10000000000000000000000, "f": NaN}\n')
    df = run_source("jsonl", path=p2).data()
    assert df["v"].to_list() == ["1", '{"k": 1}']
    assert df["big"].to_list() == ["1", "10000000000000000000000"]      # no 128-bit ints in Parquet


def test_jsonl_strict(write, run_source):
    p = write("s.jsonl", '{"a": 1}\n{oops}\n')
    with pytest.raises(DataError, match=rf"jsonl:{p}:2: invalid_json"):
        run_source("jsonl", path=p, strict=True)


def test_jsonl_empty_file(write, run_source):
    r = run_source("jsonl", path=write("e.jsonl", ""))
    assert r.data().height == 0 and r.rejects().height == 0


def test_hh_rlhf_sample(data_dir, run_source):
    path = data_dir / "hh_rlhf_harmless_base_test_first300.jsonl"
    r = run_source("jsonl", path=path, fields={"good": "chosen", "bad": "rejected"})
    df = r.data()
    assert df.height == 300 and r.rejects().height == 0
    assert df["good"].str.starts_with("\n\nHuman:").all()


def test_json_array_and_records_key(write, run_source, by_locator):
    p = write("a.json", json.dumps([{"text": "a", "n": 1}, 5, {"text": "b", "n": 2}]))
    r = run_source("json", path=p)
    assert r.data()["text"].to_list() == ["a", "b"]
    assert r.data()["source"].to_list() == [f"json:{p}:0", f"json:{p}:2"]
    assert by_locator(r.rejects()) == {f"json:{p}:1": ("not_an_object", "expected a JSON object, got a number")}
    q = write("b.json", json.dumps({"meta": {}, "data": {"rows": [{"x": 1}]}}))
    assert run_source("json", path=q, records_key="data.rows").data()["x"].to_list() == [1]


def test_json_object_without_records_key_names_candidates(write, run_source):
    p = write("o.json", json.dumps({"version": 1, "data": [{"x": 1}]}))
    with pytest.raises(DataError, match="set records_key.*'data'"):
        run_source("json", path=p)
    with pytest.raises(DataError, match=r"records_key 'rows' not found.*'version', 'data'"):
        run_source("json", path=p, records_key="rows")


def test_json_invalid_document_is_quarantined(write, run_source, by_locator):
    p = write("bad.json", '[{"a": 1}, {"a": 2')
    r = run_source("json", path=p)
    assert r.data().height == 0
    reason, detail = by_locator(r.rejects())[f"json:{p}"]
    assert reason == "invalid_json" and "line 1" in detail


def test_ni_task_instances(data_dir, run_source):
    path = data_dir / "ni_tasks" / "task1146_country_capital.json"
    n = len(json.loads(path.read_text())["Instances"])
    r = run_source("json", path=path, records_key="Instances", text="input")
    df = r.data()
    assert df.height == n and df["output"].dtype == pl.List(pl.String)
    assert df["source"][3] == f"json:{path}:3"
