"""CSV/TSV sources: parsing, quarantine of malformed records, encodings, globs, mapping, strict."""
from __future__ import annotations

import gzip
import os

import polars as pl
import pytest

from curate.errors import CurateError, DataError


def test_reads_values_as_strings_with_line_locators(write, run_source):
    p = write("a.csv", 'id,text,n\n1,hello,3\n2,"multi\nline, quoted",4\n3,"say ""hi""",5\n')
    r = run_source("csv", path=p, text="text")
    df = r.data()
    assert df["text"].to_list() == ["hello", "multi\nline, quoted", 'say "hi"']
    assert df["n"].dtype == pl.String and df["n"].to_list() == ["3", "4", "5"]
    # the record that starts on line 3 spans two lines, so the next one starts on line 5
    assert df["source"].to_list() == [f"csv:{p}:2", f"csv:{p}:3", f"csv:{p}:5"]
    assert df["origin"].unique().to_list() == ["csv"]
    assert r.rejects().height == 0


def test_wrong_field_count_is_quarantined_with_line_and_raw(write, run_source, by_locator):
    p = write("a.csv", "text,label\nok,1\ntoo,many,fields\nshort\nfine,0\n")
    r = run_source("csv", path=p)
    assert r.data()["text"].to_list() == ["ok", "fine"]
    rej = r.rejects()
    got = by_locator(rej)
    assert got == {f"csv:{p}:3": ("wrong_field_count", "expected 2 fields, got 3"),
                   f"csv:{p}:4": ("wrong_field_count", "expected 2 fields, got 1")}
    assert rej.filter(pl.col("source") == f"csv:{p}:3")["raw"].to_list() == ["too,many,fields"]
    assert set(rej["step"]) == {"source:csv"}


def test_broken_quoting_is_quarantined_and_parsing_resumes(write, run_source, by_locator):
    # line 3 opens a quote that never closes; line 5 has text after a closing quote
    p = write("q.csv", 'k,text\n1,hello\n2,"unterminated\n3,fine\n4,"bad"x\n5,last\n')
    r = run_source("csv", path=p)
    assert r.data()["k"].to_list() == ["1", "3", "5"]
    got = by_locator(r.rejects())
    assert set(got) == {f"csv:{p}:3", f"csv:{p}:5"}
    assert {reason for reason, _ in got.values()} == {"bad_quoting"}
    assert "expected after" in got[f"csv:{p}:5"][1]


def test_unterminated_quote_at_end_of_file(write, run_source, by_locator):
    p = write("q.csv", 'k,text\n1,a\n2,"never closed\n3,b\n')
    r = run_source("csv", path=p)
    assert r.data()["k"].to_list() == ["1", "3"]
    reason, detail = by_locator(r.rejects())[f"csv:{p}:3"]
    assert reason == "bad_quoting" and "unexpected end of data" in detail


def test_bad_utf8_is_quarantined_with_byte_offset(write, run_source, by_locator):
    # mostly valid UTF-8 (accents) with one corrupt byte on line 3
    body = "text,label\ncafé crème,1\n".encode() + b"na\xefve \xff,0\n" + "déjà vu,1\n".encode()
    p = write("u.csv", body)
    for enc in ("auto", "utf-8"):
        r = run_source("csv", path=p, encoding=enc)
        assert r.data()["text"].to_list() == ["café crème", "déjà vu"]
        reason, detail = by_locator(r.rejects())[f"csv:{p}:3"]
        offset = body.index(b"\xef")
        assert reason == "bad_encoding"
        assert f"byte offset {offset}" in detail and "0xef" in detail


def test_latin1_file_is_decoded_by_auto_detection(write, run_source):
    rows = ["Müller,Größe und Gewicht",
            "François,à la carte, très élégant".replace(",", ";", 1).replace(";", ","),
            "José,niño pequeño en la montaña"]
    text = "name,note\n" + "\n".join(f'{a},"{b}"' for a, b in (r.split(",", 1) for r in rows)) + "\n"
    text += "Zoë,naïve café crème brûlée déjà vu\n" * 20
    p = write("l.csv", text.encode("latin-1"))
    r = run_source("csv", path=p)
    df = r.data()
    assert df["name"][:3].to_list() == ["Müller", "François", "José"]
    assert df["note"][1] == "à la carte, très élégant"
    assert df["note"][3] == "naïve café crème brûlée déjà vu"
    assert r.rejects().height == 0


def test_explicit_encoding(write, run_source):
    p = write("l.csv", "a\nÅngström\n".encode("cp1252"))
    assert run_source("csv", path=p, encoding="cp1252").data()["a"].to_list() == ["Ångström"]


def test_unknown_encoding_is_a_data_error(write, run_source):
    p = write("l.csv", "a\nx\n")
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        run_source("csv", path=p, encoding="klingon")


def test_bom_is_stripped(write, run_source):
    p = write("b.csv", b"\xef\xbb\xbftext,label\nhi,1\n")
    r = run_source("csv", path=p, text="text")
    assert r.data().columns == ["id", "source", "origin", "text", "label"]
    p2 = write("b16.csv", "text,label\nhé,1\n".encode("utf-16"))
    assert run_source("csv", path=p2).data()["text"].to_list() == ["hé"]


def test_empty_file_yields_no_rows(write, run_source):
    p = write("empty.csv", b"")
    r = run_source("csv", path=p)
    assert r.data().height == 0
    assert r.manifest["sources"][0]["rows"] == 0 and r.manifest["sources"][0]["rejected"] == 0


def test_header_only_file_keeps_columns(write, run_source):
    p = write("h.csv", "text,label\n")
    r = run_source("csv", path=p, text="text")
    assert r.data().height == 0 and "text" in r.data().columns


def test_missing_file_and_empty_glob_are_data_errors(tmp_path, run_source):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=f"not found: {missing}"):
        run_source("csv", path=missing)
    with pytest.raises(DataError, match=r"glob '.*/\*\.nothing' matches no file"):
        run_source("csv", path=str(tmp_path / "*.nothing"))
    with pytest.raises(DataError, match="is a directory"):
        run_source("csv", path=tmp_path)


def test_glob_and_list_of_paths(write, run_source, tmp_path):
    a = write("d/a.csv", "text\na1\na2\n")
    b = write("d/b.csv", "text\nb1\n")
    c = write("e/c.csv", "text\nc1\n")
    r = run_source("csv", path=str(tmp_path / "d" / "*.csv"))
    assert r.data()["text"].to_list() == ["a1", "a2", "b1"]
    assert r.data()["source"].to_list() == [f"csv:{a}:2", f"csv:{a}:3", f"csv:{b}:2"]
    r = run_source("csv", path=[str(c), str(tmp_path / "d" / "*.csv"), str(a)])
    assert r.data()["text"].to_list() == ["c1", "a1", "a2", "b1"]      # a.csv only once
    r = run_source("csv", path=str(tmp_path / "**" / "*.csv"))
    assert r.data().height == 4


def test_relative_paths_stay_relative(in_tmp, write, run_source):
    write("rel.csv", "text\nx\n")
    assert run_source("csv", path="rel.csv").data()["source"].to_list() == ["csv:rel.csv:2"]


def test_mapping_and_missing_mapped_column(write, run_source):
    p = write("m.csv", "message,category,extra\nhello,a,z\n")
    r = run_source("csv", path=p, text="message", label="category", fields={"note": "extra"})
    assert r.data().row(0, named=True) | {"id": None} == {
        "id": None, "source": f"csv:{p}:2", "origin": "csv", "text": "hello", "label": "a", "note": "z"}
    with pytest.raises(DataError) as e:
        run_source("csv", path=p, text="body")
    msg = str(e.value)
    assert "'body'" in msg and "'message'" in msg and "'category'" in msg and "'extra'" in msg


def test_strict_mode_raises_with_file_and_line(write, run_source):
    p = write("s.csv", "a,b\n1,2\n3\n")
    with pytest.raises(DataError, match=rf"csv:{p}:3: wrong_field_count \(expected 2 fields, got 1\)"):
        run_source("csv", path=p, strict=True)


def test_accounting_rows_plus_rejects_equal_records(write, run_source):
    lines = ["a,b"] + [f"{i},x{i}" for i in range(200)]
    for i in (5, 50, 120):
        lines[i] = f"{i},bad,extra"
    lines[77] = '77,"open'
    lines[78] = "78,y"
    p = write("acc.csv", "\n".join(lines) + "\n")
    r = run_source("csv", path=p)
    assert r.data().height + r.rejects().height == 200
    assert r.rejects()["reason"].value_counts().sort("reason").rows() == [
        ("bad_quoting", 1), ("wrong_field_count", 3)]
    assert r.manifest["totals"]["rows_read"] == 200


def test_header_false_with_and_without_columns(write, run_source):
    p = write("n.csv", "x,1\ny,2\n")
    r = run_source("csv", path=p, header=False, columns=["text", "label"])
    assert r.data().select("text", "label").rows() == [("x", "1"), ("y", "2")]
    assert r.data()["source"].to_list() == [f"csv:{p}:1", f"csv:{p}:2"]
    r = run_source("csv", path=p, header=False)
    assert r.data().select("column_1", "column_2").rows() == [("x", "1"), ("y", "2")]
    r = run_source("csv", path=p, columns=["t", "l"])        # header line replaced
    assert r.data().select("t", "l").rows() == [("y", "2")]


def test_duplicate_and_blank_header_names(write, run_source):
    p = write("d.csv", "a,a,\n1,2,3\n")
    assert run_source("csv", path=p).data().select("a", "a_2", "column_3").rows() == [("1", "2", "3")]


def test_dialect_options(write, run_source):
    p = write("semi.csv", "a;b\n'x;y';2\n")
    r = run_source("csv", path=p, delimiter=";", quotechar="'")
    assert r.data().select("a", "b").rows() == [("x;y", "2")]


def test_blank_lines_are_not_rows(write, run_source):
    p = write("bl.csv", "a,b\n\n1,2\n\r\n3,4\n")
    r = run_source("csv", path=p)
    assert r.data()["source"].to_list() == [f"csv:{p}:3", f"csv:{p}:5"]


def test_tsv_default_is_unquoted(write, run_source):
    p = write("t.tsv", 'label\ttext\nham\t"quoted" at start\nspam\tit\'s "fine\n')
    r = run_source("tsv", path=p, text="text")
    assert r.data()["text"].to_list() == ['"quoted" at start', 'it\'s "fine']
    assert r.data()["source"][0] == f"csv:{p}:2"


def test_sms_spam_tsv_reads_fully(data_dir, run_source):
    path = data_dir / "sms_spam_collection.tsv"
    r = run_source("tsv", path=path, text="SMS", label="Label")
    df = r.data()
    assert df.height == 5574 and r.rejects().height == 0
    assert dict(df["label"].value_counts().rows()) == {"ham": 4827, "spam": 747}
    assert df["source"][0] == f"csv:{path}:2" and df["source"][-1] == f"csv:{path}:5575"


def test_gzip_is_transparent(write, run_source):
    p = write("z.csv.gz", gzip.compress(b"text\nzipped\n"))
    r = run_source("csv", path=p)
    assert r.data()["text"].to_list() == ["zipped"]
    assert r.data()["source"][0] == f"csv:{p}:2"


def test_limit(write, run_source):
    p = write("l.csv", "a\n" + "".join(f"{i}\n" for i in range(100)))
    assert run_source("csv", path=p, limit=7).data()["a"].to_list() == [str(i) for i in range(7)]


def test_fingerprint_caches_unchanged_files(write, tmp_path):
    from curate import Pipeline
    p = write("f.csv", "text\na\n")
    def run():
        return Pipeline(name="fp", sources=[{"csv": {"path": str(p)}}], workdir=str(tmp_path / "w"),
                        out_dir=str(tmp_path / "o")).run()
    assert not run().reports[0].cached
    assert run().reports[0].cached
    p.write_text("text\na\nb\n")
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    r = run()
    assert not r.reports[0].cached and r.data()["text"].to_list() == ["a", "b"]


def test_unknown_option_is_rejected(write, run_source):
    p = write("x.csv", "a\n1\n")
    with pytest.raises(CurateError, match="delimeter"):
        run_source("csv", path=p, delimeter=";")


def test_registered_names():
    from curate import registry
    sources, outputs = registry.names("source"), registry.names("output")
    assert {"csv", "tsv", "json", "jsonl", "parquet", "hf_dataset"} <= set(sources)
    assert {"jsonl", "parquet", "csv", "hf_dataset"} <= set(outputs)


def test_bad_option_value_names_the_allowed_ones(write, run_source):
    p = write("x.csv", "a\n1\n")
    with pytest.raises(CurateError, match="quoting.*minimal.*none"):
        run_source("csv", path=p, quoting="all")
