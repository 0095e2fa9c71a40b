"""Acceptance: one pipeline file with all four source kinds (file, web, sql, s3) builds one dataset."""
from __future__ import annotations

import json
import sqlite3

import polars as pl

from curate import Pipeline


def test_file_web_sql_s3_in_one_run(site, s3, s3_endpoint, data_dir, tmp_path, monkeypatch):
    client, bucket = s3
    client.put_object(Bucket=bucket, Key="tickets/t1.jsonl",
                      Body=b'{"body": "my invoice is wrong please help", "tag": "billing"}\n'
                           b'{"body": broken json\n'
                           b'{"body": "the app crashes when I log in", "tag": "tech"}\n')
    db = tmp_path / "tickets.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE tickets (pk INTEGER PRIMARY KEY, body TEXT, tag TEXT)")
    con.executemany("INSERT INTO tickets VALUES (?, ?, ?)",
                    [(1, "refund has not arrived yet", "billing"), (2, None, "tech"),
                     (3, "password reset mail never came", "tech")])
    con.commit()
    con.close()
    monkeypatch.setenv("TICKETS_DB", f"sqlite:///{db}")
    monkeypatch.setenv("S3_ENDPOINT", s3_endpoint)
    pipeline = tmp_path / "all.yaml"
    pipeline.write_text(f"""
name: all-sources
seed: 7
workdir: {tmp_path}/.curate
out_dir: {tmp_path}/out
sources:
  - tsv: {{path: {data_dir}/sms_spam_collection.tsv, text: SMS, label: Label, limit: 20, name: sms}}
  - web: {{urls: ["{site.url('/a.html')}", "{site.url('/b.html')}", "{site.url('/file.bin')}"],
           state_dir: {tmp_path}/web, rate_limit: 100, timeout: 5, detect_language: false, name: pages}}
  - sql: {{url: "${{env:TICKETS_DB}}", table: tickets, text: body, label: tag, name: db}}
  - s3: {{url: "s3://{bucket}/tickets/*.jsonl", endpoint_url: "${{env:S3_ENDPOINT}}", text: body,
          label: tag, name: bucket}}
steps:
  - clean: {{min_words: 2}}
outputs:
  - jsonl: {{path: {tmp_path}/out/data.jsonl}}
""")
    res = Pipeline.from_yaml(pipeline).run()
    df = res.data()
    counts = dict(df.group_by("origin").len().iter_rows())
    assert counts == {"sms": 20, "pages": 2, "db": 2, "bucket": 2}
    assert df.filter(pl.col("origin") == "pages")["source"].to_list() == [site.url("/a.html"), site.url("/b.html")]
    assert "sql:tickets:pk=3" in df["source"].to_list()
    assert f"s3://{bucket}/tickets/t1.jsonl:3" in df["source"].to_list()
    rej = res.rejects()
    got = {(r["origin"], r["reason"]) for r in rej.iter_rows(named=True)}
    assert {("pages", "binary_content"), ("db", "null_value"), ("bucket", "invalid_json")} <= got, got
    written = [json.loads(x) for x in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
    assert len(written) == df.height == 26
    assert [s["name"] for s in res.manifest["sources"]] == ["sms", "pages", "db", "bucket"]
    assert s3_endpoint not in res.manifest_path.read_text()    # env refs stay unresolved
