"""Storage is separate from format: every file source reads, and every output writes, local
paths and fsspec URLs (``memory://`` here, ``s3://`` on moto in test_s3_storage.py) through
curate.storage, and the bytes written are the same whatever the storage."""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import fsspec
import polars as pl
import pytest

from curate import storage
from curate.errors import CurateError, DataError
from curate.pipeline import Pipeline

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"
SMS = DATA / "sms_spam_collection.tsv"
HH = DATA / "hh_rlhf_harmless_base_test_first300.jsonl"


def put(url: str, data: bytes) -> None:
    with fsspec.open(url, "wb") as f:
        f.write(data)


def get(url: str) -> bytes:
    with fsspec.open(url, "rb") as f:
        return f.read()


# ------------------------------------------------------------------------------ the layer
def test_path_is_local_path_or_upath(mem):
    assert isinstance(storage.path("out/x.jsonl"), Path)
    assert isinstance(storage.path("file:///tmp/x.jsonl"), Path)
    p = storage.path(f"{mem}/out/x.jsonl")
    assert storage.is_url(p) and str(p) == f"{mem}/out/x.jsonl"
    assert str(p.with_name("x.train.jsonl")) == f"{mem}/out/x.train.jsonl"
    assert not storage.is_url("C:/data/x.csv") and not storage.is_url(Path("/tmp"))


def test_atomic_path_uploads_only_on_success(mem):
    target = storage.path(f"{mem}/a/b.txt")
    with storage.atomic_path(target) as tmp:
        assert isinstance(tmp, Path)
        tmp.write_bytes(b"hello")
        assert not storage.exists(target)            # nothing visible before the block ends
    assert get(f"{mem}/a/b.txt") == b"hello"
    assert storage.size(target) == 5
    with pytest.raises(RuntimeError):
        with storage.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert get(f"{mem}/a/b.txt") == b"hello"          # the old object is untouched
    assert storage.sha256(target) == storage.sha256(_local_copy(target, b"hello"))


def _local_copy(_target, data: bytes) -> Path:
    import tempfile
    f = Path(tempfile.mkdtemp()) / "x"
    f.write_bytes(data)
    return f


def test_expand_globs_and_errors(mem):
    for name in ("b.jsonl", "a.jsonl", "sub/c.jsonl", "x.csv"):
        put(f"{mem}/in/{name}", b'{"text": "t"}\n')
    got = [str(p) for p in storage.expand(f"{mem}/in/*.jsonl")]
    assert got == [f"{mem}/in/a.jsonl", f"{mem}/in/b.jsonl"]
    got = [str(p) for p in storage.expand(f"{mem}/in/**/*.jsonl")]
    assert f"{mem}/in/sub/c.jsonl" in got
    with pytest.raises(DataError, match="matches no file"):
        storage.expand(f"{mem}/in/*.parquet")
    with pytest.raises(DataError, match="not found"):
        storage.expand(f"{mem}/in/missing.jsonl")
    with pytest.raises(DataError, match="is a directory"):
        storage.expand(f"{mem}/in")


def test_secrets_in_storage_options_are_refused(tmp_path):
    from curate.connectors.files.jsonl import JsonlSource
    with pytest.raises(Exception, match="AWS_SECRET_ACCESS_KEY"):
        JsonlSource({"path": "s3://b/x.jsonl", "storage_options": {"secret": "abc"}})
    JsonlSource({"path": "s3://b/x.jsonl", "storage_options": {"endpoint_url": "http://minio:9000"}})


def test_unknown_protocol_names_it():
    with pytest.raises(CurateError, match="nosuchfs://"):
        storage.path("nosuchfs://bucket/x.csv")


# ------------------------------------------------------------------------------ sources
def _read(source) -> pl.DataFrame:
    frames = [b.rows for b in source.read() if b.rows.height]
    return pl.concat(frames, how="diagonal_relaxed")


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "jsonl.gz", "parquet"])
def test_every_file_source_reads_a_url_like_a_local_file(fmt, tmp_path, mem):
    from curate.registry import get
    rows = pl.DataFrame({"text": ["one two three", "four five", "héllo wörld"], "label": ["a", "b", "a"]})
    buf = io.BytesIO()
    kind = fmt.split(".")[0]
    if kind == "csv":
        rows.write_csv(buf)
    elif kind == "tsv":
        rows.write_csv(buf, separator="\t")
    elif kind == "json":
        buf.write(json.dumps(rows.to_dicts()).encode())
    elif kind == "jsonl":
        rows.write_ndjson(buf)
    else:
        rows.write_parquet(buf)
    data = buf.getvalue()
    if fmt.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    (tmp_path / f"x.{fmt}").write_bytes(data)
    put(f"{mem}/in/x.{fmt}", data)
    cls = get("source", kind)
    local = cls({"path": str(tmp_path / f"*.{fmt}")})
    remote = cls({"path": f"{mem}/in/*.{fmt}"})
    a, b = _read(local), _read(remote)
    assert a.drop("source").equals(b.drop("source"))
    assert b["source"][0].startswith(f"{'csv' if kind == 'tsv' else kind}:{mem}/in/x.{fmt}:")
    assert local.fingerprint() != remote.fingerprint()
    fp = remote.fingerprint()
    assert remote.fingerprint() == fp                  # stable while the object is unchanged
    put(f"{mem}/in/x.{fmt}", data + (b"\n" if kind in ("csv", "tsv", "jsonl") and not fmt.endswith(".gz") else b""))
    if kind in ("csv", "tsv", "jsonl") and not fmt.endswith(".gz"):
        assert cls({"path": f"{mem}/in/*.{fmt}"}).fingerprint() != fp   # size changed


# ------------------------------------------------------------------------------ outputs, end to end
def _pipeline(base: str, src_base: str, name: str, workdir: Path) -> Pipeline:
    """The quickstart's shape on a slice of its data, writing every output format under ``base``."""
    return Pipeline(
        name=name, seed=13, workdir=str(workdir), out_dir=str(workdir / "out"),
        sources=[{"tsv": {"name": "sms", "path": f"{src_base}/sms.tsv", "text": "SMS", "label": "Label", "limit": 400}},
                 {"jsonl": {"name": "hh", "path": f"{src_base}/hh.jsonl", "limit": 30}}],
        steps=[{"clean": {"apply_to": ["sms"], "min_words": 3}},
               {"dedup": {"apply_to": ["sms"], "columns": ["text"]}},
               {"balance": {"apply_to": ["sms"], "method": "undersample", "label": "label"}},
               {"dpo_pairs": {"apply_to": ["hh"]}}],
        outputs=[
            {"natural_instructions": {
                "sources": ["sms"], "dir": f"{base}/ni", "task_number": 9001,
                "task_name": "sms_spam_classification", "source": ["sms_spam_collection"],
                "definition": "Classify the SMS as spam or ham.", "categories": ["Text Categorization"],
                "domains": ["Social Media"], "instance_license": ["free"],
                "auto_examples": {"positive": 2, "negative": 1}}},
            {"dpo": {"sources": ["hh"], "path": f"{base}/dpo.jsonl"}},
            {"chat": {"sources": ["sms"], "path": f"{base}/chat.jsonl.gz", "instruction_text": "Spam or ham?",
                      "input": "text", "output": "label"}},
            {"alpaca": {"sources": ["sms"], "path": f"{base}/alpaca.jsonl", "instruction_text": "Spam or ham?",
                        "input": "text", "output": "label"}},
            # `source` holds each row's locator (which names the input's path): leave it out
            {"jsonl": {"sources": ["sms"], "path": f"{base}/rows.jsonl.gz", "columns": ["text", "label"]}},
            {"csv": {"sources": ["sms"], "path": f"{base}/rows.csv.gz", "columns": ["text", "label"]}},
            {"parquet": {"sources": ["sms"], "path": f"{base}/rows.parquet", "columns": ["text", "label"]}},
        ])


@pytest.mark.slow
def test_outputs_are_byte_identical_local_and_memory(tmp_path, mem):
    sms = b"".join(SMS.read_bytes().splitlines(keepends=True)[:420])
    hh = b"".join(HH.read_bytes().splitlines(keepends=True)[:30])
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sms.tsv").write_bytes(sms)
    (tmp_path / "in" / "hh.jsonl").write_bytes(hh)
    put(f"{mem}/in/sms.tsv", sms)
    put(f"{mem}/in/hh.jsonl", hh)

    local = _pipeline(str(tmp_path / "out"), str(tmp_path / "in"), "st", tmp_path / "w1").run()
    remote = _pipeline(f"{mem}/out", f"{mem}/in", "st", tmp_path / "w2").run()

    lfiles = {str(Path(f).relative_to(tmp_path / "out")): Path(f).read_bytes() for f in local.outputs}
    rfiles = {str(f)[len(f"{mem}/out/"):]: get(str(f)) for f in remote.outputs}
    assert set(lfiles) == set(rfiles)
    assert {"dpo.jsonl", "chat.jsonl.gz", "alpaca.jsonl", "rows.jsonl.gz", "rows.csv.gz", "rows.parquet"} <= set(lfiles)
    assert any(k.startswith("ni/") for k in lfiles)
    for k in lfiles:
        assert lfiles[k] == rfiles[k], k
    # the manifest records the URL and the same hashes
    lh = {Path(f["path"]).name: f["sha256"] for o in local.manifest["outputs"] for f in o["files"]}
    rh = {f["path"].rsplit("/", 1)[-1]: f["sha256"] for o in remote.manifest["outputs"] for f in o["files"]}
    assert lh == rh
    assert all(f["path"].startswith(f"{mem}/out/") for o in remote.manifest["outputs"] for f in o["files"])
    # gzip headers carry no time: decompressed rows match the plain jsonl
    assert lfiles["rows.jsonl.gz"][4:8] == b"\0\0\0\0"

    # a second run finds the remote outputs unchanged and keeps them (cached)
    again = _pipeline(f"{mem}/out", f"{mem}/in", "st", tmp_path / "w2").run()
    assert all(r.cached for r in again.reports if r.kind == "output")


def test_hf_dataset_folder_round_trips_through_a_url(tmp_path, mem):
    rows = [{"text": f"row {i} has words"} for i in range(5)]
    res = Pipeline(name="hf", sources=[rows], workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o"),
                   outputs=[{"hf_dataset": {"dir": f"{mem}/ds", "columns": ["text"]}}]).run()
    assert res.outputs and all(str(p).startswith(f"{mem}/ds/") for p in res.outputs)
    back = Pipeline(name="hf2", sources=[{"hf_dataset": {"path": f"{mem}/ds"}}],
                    workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o2")).run().to_polars()
    assert back["text"].to_list() == [r["text"] for r in rows]
    assert back["source"][0] == f"hf_dataset:{mem}/ds:0"


def test_out_dir_may_be_a_url_manifest_and_rejects_are_uploaded(tmp_path, mem, monkeypatch):
    """out_dir: memory://... — the run writes a local mirror under the workdir and uploads the
    manifest, the rejects (full run and run folder) and, from the CLI, the report."""
    rows = [{"text": "hello there friend"}, {"text": "hello there friend"}, {"text": "another message here"}]
    p = Pipeline(name="remote-out", sources=[{"inline": {"rows": rows}}], steps=[{"dedup": {}}],
                 outputs=[{"jsonl": {"path": f"{mem}/data/rows.jsonl"}}],
                 workdir=str(tmp_path / "w"), out_dir=f"{mem}/run")
    r = p.run()
    manifest = json.loads(get(f"{mem}/run/manifest.json"))
    assert manifest["totals"]["rows_rejected"] == 1 and manifest["status"] == "ok"
    rejects = [json.loads(x) for x in get(f"{mem}/run/rejects.jsonl").decode().splitlines()]
    assert [x["reason"] for x in rejects] == ["exact_duplicate"]
    fs = fsspec.filesystem("memory")
    run_files = fs.glob(f"{mem[len('memory://'):]}/run/runs/*/manifest.json")
    assert len(run_files) == 1
    assert r.manifest_path.is_relative_to(tmp_path / "w")          # the local mirror
    # through the CLI the report goes there too
    import yaml
    from typer.testing import CliRunner

    from curate.cli import app
    cfg = {"name": "remote-cli", "workdir": str(tmp_path / "w2"), "out_dir": f"{mem}/cli",
           "sources": [{"inline": {"rows": rows}}], "steps": [{"dedup": {}}]}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["build", str(tmp_path / "p.yaml"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert get(f"{mem}/cli/report.html").startswith(b"<!DOCTYPE html>") or b"<html" in get(f"{mem}/cli/report.html")[:500]
    assert f"{mem}/cli/report.html" in res.output
