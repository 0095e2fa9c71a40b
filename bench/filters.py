"""Heuristic quality filters: curate's vectorised steps vs a pandas row-apply implementation of
the same rules (``curate.steps.quality._reference.decide``, the obvious per-row Python), on the
same rows, in the same process, with a check that both make identical decisions.

    python bench/filters.py            # 200,000 rows
    python bench/filters.py --small    # 20,000 rows (well under 5 minutes on 2 cores)

Rows: the shipped SMS Spam Collection and hh-rlhf dialogues (chosen and rejected), plus planted
bad rows (bullet lists, hashtag soup, ellipsis lines, repeated lines, number tables), copied with
a per-copy word shuffle until the row count is reached. Rules: the seven ``quality_*`` steps with
the English (Gopher) defaults except ``min_words: 3`` (SMS-length texts). curate runs the steps
one after another on the kept rows of the previous step, batch by batch (50,000 rows, the
engine's default), as a pipeline does (cheap rules first,
repetition last; the reference checks in the same order, so the recorded reasons agree too); pandas runs
``Series.apply(decide)``. Timed region: texts in memory → reason per row (best of ``--repeat``
interleaved runs each, default 2). The last line is ``speedup_vs_pandas_apply=<ratio>``.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "pipelines" / "data"

THRESHOLDS = {"min_words": 3}


def corpus(n: int, seed: int = 0) -> list[str]:
    import json
    rng = random.Random(seed)
    base = [ln.split("\t", 1)[1] for ln in (DATA / "sms_spam_collection.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    for ln in (DATA / "hh_rlhf_harmless_base_test_first300.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(ln)
        base += [row["chosen"], row["rejected"]]
    base += ["- item one\n- item two\n- item three\n- item four"] * 20
    base += ["#deal #win #free #now #sale #cheap #best #top"] * 20
    base += ["and then it went...\nwe waited...\nnothing happened...\nthe end"] * 20
    base += ["Home\nAbout us\nHome\nContact\nHome\nAbout us\nHome"] * 20
    base += ["12 34 56 78 90 11 22 33 44 55 66 77 88 99"] * 20
    out: list[str] = []
    while len(out) < n:
        for t in base:
            if len(out) >= n:
                break
            words = t.split(" ")
            if len(words) > 3 and rng.random() < 0.5:        # vary copies a little
                i = rng.randrange(len(words) - 1)
                words[i], words[i + 1] = words[i + 1], words[i]
            out.append(" ".join(words))
    rng.shuffle(out)
    return out


BATCH = 50_000      # the engine's default batch_size: batch steps see at most this many rows


def run_curate(texts: list[str]):
    """Reason per row (None = kept) from the seven steps run in sequence on each batch."""
    import polars as pl

    from curate.step import StepContext
    from curate.steps.quality import heuristics as H
    ctx = StepContext("bench", 0, 0, Path("/tmp"))
    steps = [H.WordCount(min_words=THRESHOLDS["min_words"]), H.WordLength(), H.Symbols(), H.Lines(),
             H.StopWords(), H.Alpha(), H.Repetition()]       # costly rule last
    table = pl.DataFrame({"text": texts}).with_row_index("id")
    reason = pl.Series("reason", [None] * table.height, dtype=pl.String)
    for start in range(0, table.height, BATCH):
        df = table.slice(start, BATCH)
        for s in steps:
            res = s.process(df, ctx)
            df = res.kept
            reason = reason.scatter(res.rejected.get_column("id"), res.rejected.get_column("reason"))
    return reason.to_list()


def run_pandas(texts: list[str]):
    import pandas as pd

    from curate.steps.clean._repetition import RepetitionConfig
    from curate.steps.quality._reference import decide
    rc = RepetitionConfig()
    s = pd.Series(texts)
    return [r if isinstance(r, str) else None           # pandas turns None into NaN
            for r in s.apply(lambda t: decide(t, THRESHOLDS, "en", rc)).tolist()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="20,000 rows instead of 200,000")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per tool (best is kept)")
    a = ap.parse_args()
    n = a.rows or (20_000 if a.small else 200_000)
    texts = corpus(n)
    print(f"rows={n} chars={sum(map(len, texts)):,}")
    run_curate(texts[:2000])                      # warm up (regex compilation, imports)
    best, t_pd = float("inf"), float("inf")
    for _ in range(a.repeat):                     # interleaved, so load spikes hit both
        t0 = time.perf_counter()
        ours = run_curate(texts)
        best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        peer = run_pandas(texts)
        t_pd = min(t_pd, time.perf_counter() - t0)
    diff = [i for i, (x, y) in enumerate(zip(ours, peer)) if x != y]
    from collections import Counter
    print("reasons:", dict(Counter(r or "kept" for r in ours).most_common()))
    print(f"identical_decisions={not diff} mismatches={len(diff)}")
    for i in diff[:5]:
        print(f"  mismatch row {i}: curate={ours[i]} pandas={peer[i]} text={texts[i][:100]!r}")
    print(f"curate rows/s={n / best:,.0f} ({best:.2f}s)  pandas_apply rows/s={n / t_pd:,.0f} ({t_pd:.2f}s)")
    if diff:
        print("ERROR: decisions differ", file=sys.stderr)
        sys.exit(1)
    print(f"speedup_vs_pandas_apply={t_pd / best:.1f}")


if __name__ == "__main__":
    main()
