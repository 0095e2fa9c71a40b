"""What the engine costs around a step: ``curate build`` (jsonl → dedup → jsonl) against the bare
dedup step on the same documents.

Two child processes, one after the other, on the same generated corpus (bench/_gen.py):

* **bare step**: the documents are read with polars and given ids outside the timed region; the
  timed region is ``Dedup(...).process(df, ctx)`` alone, or the part-by-part path the engine
  takes (``process_table`` over the same rows already written as cache parts, plus taking the
  kept rows), whichever is faster (so a faster path inside the engine does not flatter it);
* **cli**: ``curate build --quiet PIPELINE`` in a fresh process (imports, source parsing, cache
  writes, the step, the jsonl output, the manifest and the HTML report), timed by wall clock.

``engine_overhead_ratio`` = cli throughput / bare-step throughput (1.0 = the engine and the
reading and writing around the step cost nothing). The CLI runs twice, each in a fresh workdir:
with ``--no-report`` (the last line's ratio) and with the HTML report
(``engine_overhead_ratio_with_report``); ``--no-report`` runs only the first. For each, the
manifest's source / step / output seconds and what is left (ids, rejects, manifest; start-up,
closing table, report) are printed as a breakdown.

    python bench/engine_overhead.py               # 1M documents
    python bench/engine_overhead.py --small       # 200k documents
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

DEDUP = {"exact": True, "near": {"method": "minhash", "threshold": 0.8}}

BARE = r"""
import json, sys, time
import polars as pl
from curate import records as R
from curate.registry import discover, get
from curate.step import StepContext
from curate.cache import ShardStore
import tempfile, pathlib
df = pl.read_ndjson(sys.argv[1])
df = R.with_ids(df.with_columns(pl.format("jsonl:x:{}", pl.int_range(1, pl.len() + 1)).alias("source"),
                                pl.lit("docs").alias("origin")))
discover()
step = get("step", "dedup")(json.loads(sys.argv[2]))
tmp = pathlib.Path(tempfile.mkdtemp())
ctx = StepContext(step_name="dedup", index=0, seed=0, workdir=tmp, shards=ShardStore(tmp / "s"))
t = time.perf_counter()
res = step.process(df, ctx)
dt = time.perf_counter() - t
# the part-by-part path the engine takes (Dedup.process_table), on the same rows written as
# cache parts of the engine's batch size before the clock starts; its region ends with the kept
# rows taken from the parts, as process() ends with the kept frame
from curate.cache import Table, TableWriter
w = TableWriter(tmp / "t", "kept")
(tmp / "t").mkdir()
for off in range(0, df.height, 50_000):
    w.add(df.slice(off, 50_000))
table = Table(w.segments, tmp / "t")
t = time.perf_counter()
tres = step.process_table(table, ctx)
kept = sum(f.height for f, _, _ in table.iter_take(tres.kept)) if tres is not None else None
dt_parts = time.perf_counter() - t if tres is not None else None
print(json.dumps({"seconds_frame": dt, "seconds_parts": dt_parts, "seconds": min(dt, dt_parts or dt),
                  "kept": res.kept.height, "kept_parts": kept, "rejected": res.rejected.height}))
"""


def pipeline_yaml(corpus: Path, work: Path) -> Path:
    f = work / "pipe.yaml"
    f.write_text(textwrap.dedent(f"""\
        name: overhead
        workdir: {work / '.curate'}
        out_dir: {work / 'out'}
        sources:
          - jsonl: {{path: {corpus}, name: docs}}
        steps:
          - dedup: {json.dumps(DEDUP)}
        outputs:
          - jsonl: {{path: {work / 'out' / 'docs.jsonl'}}}
        """))
    return f


def run_cli(pipe: Path, report: bool) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "curate.cli", "build", "--quiet", str(pipe)]
    if not report:
        cmd.append("--no-report")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"curate build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    m = json.loads((pipe.parent / "out" / "manifest.json").read_text())
    return wall, m


def run_bare(corpus: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", BARE, str(corpus), json.dumps(DEDUP)],
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"bare step failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--small", action="store_true", help="200k documents")
    ap.add_argument("--no-report", action="store_true", help="build with --no-report")
    ap.add_argument("--data", default=None, help="folder for the generated corpus (kept between runs)")
    a = ap.parse_args()
    n = 200_000 if a.small else a.docs
    from _gen import write_corpus
    data = Path(a.data or Path(tempfile.gettempdir()) / "curate-bench")
    data.mkdir(parents=True, exist_ok=True)
    corpus = write_corpus(data / f"docs-{n}.jsonl", n)
    bare = run_bare(corpus)
    runs = []
    for report in ([False] if a.no_report else [False, True]):
        with tempfile.TemporaryDirectory() as tmp:
            pipe = pipeline_yaml(corpus, Path(tmp))
            runs.append((report, *run_cli(pipe, report=report)))
    print(f"docs={n:,} kept={bare['kept']:,} rejected={bare['rejected']:,}")
    print(f"bare step        {bare['seconds']:8.2f} s  {n / bare['seconds']:10,.0f} docs/s  (the faster of: "
          f"whole frame {bare['seconds_frame']:.2f} s, part by part {bare['seconds_parts'] or float('nan'):.2f} s)")
    if bare["kept_parts"] is not None and bare["kept_parts"] != bare["kept"]:
        sys.exit(f"the two bare paths disagree: {bare['kept']} vs {bare['kept_parts']} rows kept")
    for report, wall, m in runs:
        src = sum(s["seconds"] for s in m["sources"])
        step = sum(s["seconds"] for s in m["steps"])
        out = sum(o.get("seconds", 0.0) for o in m["outputs"])
        inside = m["seconds"] - src - step - out    # ids, rejects, manifest
        outside = wall - m["seconds"]               # interpreter start, imports, closing table, report
        print(f"curate build     {wall:8.2f} s  {n / wall:10,.0f} docs/s  (report {'on' if report else 'off'})")
        print(f"  source         {src:8.2f} s  (parsing the jsonl, writing its parts)")
        print(f"  step           {step:8.2f} s  (the step, its input read, accounting, its entry;"
              f" {step - bare['seconds']:+.2f} s vs bare)")
        print(f"  output         {out:8.2f} s  (the jsonl output and its checksum)")
        print(f"  engine rest    {inside:8.2f} s  (ids, rejects, manifest)")
        print(f"  outside run    {outside:8.2f} s  (start-up, imports, closing table{', HTML report' if report else ''})")
    ratios = {report: bare["seconds"] / wall for report, wall, _ in runs}
    if True in ratios:
        print(f"engine_overhead_ratio_with_report={ratios[True]:.3f}")
    print(f"engine_overhead_ratio={ratios[False]:.3f}")


if __name__ == "__main__":
    main()
