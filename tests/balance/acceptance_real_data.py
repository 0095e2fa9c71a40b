"""Acceptance run on the real imbalanced dataset (SMS Spam Collection, 4827 ham / 747 spam).

Balances it with every method, prints the manifest's before/after counts, checks SMOTE rows carry
parents and passed the gate, and checks a stratified split keeps class ratios within 1 pp.
Not collected by pytest (embedding 5.5k texts takes minutes on a CPU; seconds on a GPU):

    python tests/balance/acceptance_real_data.py [--rows N] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from curate import Pipeline  # noqa: E402
from curate.registry import register_source  # noqa: E402
from curate.source import Source, SourceBatch, SourceConfig  # noqa: E402


class TsvConfig(SourceConfig):
    path: str


@register_source("acceptance_tsv")
class Tsv(Source):
    """label<TAB>text lines (split on the first tab only; header skipped)."""

    Config = TsvConfig

    def read(self):
        lines = Path(self.config.path).read_text(encoding="utf-8").splitlines()
        rows = [ln.split("\t", 1) for ln in lines[1:]]
        yield SourceBatch(pl.DataFrame({"label": [r[0] for r in rows], "text": [r[1] for r in rows],
                                        "source": [f"tsv:{self.config.path}:{i + 2}" for i in range(len(rows))]}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=None, help="limit rows (smoke run)")
    ap.add_argument("--out", default="/tmp/balance-acceptance")
    ap.add_argument("--methods", default="oversample,undersample,tomek,cluster_centroids,smote,"
                                         "borderline_smote,adasyn")
    args = ap.parse_args()
    data = REPO / "pipelines" / "data" / "sms_spam_collection.tsv"
    src = {"acceptance_tsv": {"path": str(data), **({"limit": args.rows} if args.rows else {})}}
    out = Path(args.out)
    ok = True
    for method in args.methods.split(","):
        t0 = time.time()
        p = Pipeline(name=f"acc-{method}", seed=13, sources=[src], steps=[{"balance": {"method": method}}],
                     workdir=str(out / ".curate"), out_dir=str(out / method))
        res = p.run()
        m = res.manifest["steps"][0]
        st = m["stats"]
        line = (f"{method:18s} before={st['before']} after={st['after']} created={m['rows_created']} "
                f"rejected={m['rows_rejected']} class_weights={st['class_weights']} {time.time() - t0:.1f}s")
        print(line, flush=True)
        if "smote" in st:
            sm = st["smote"]
            df = res.data()
            syn = df.filter(pl.col("smote_weight").is_not_null())
            good = (syn["parents"].list.len() == 2).all() and (syn["point_similarity"] >= 0.7).all()
            ok &= bool(good) and sm["parents_recovered"] == sum(sm["synthetic_points"].values())
            print(f"{'':18s} smote: points={sm['synthetic_points']} parents_recovered={sm['parents_recovered']} "
                  f"accepted={sm['accepted']} acceptance_rate={sm['acceptance_rate']} "
                  f"rejected_by_reason={sm['rejected_by_reason']} fallbacks={sm['fallbacks']} "
                  f"rows_have_parents_and_passed_gate={good}", flush=True)
    p = Pipeline(name="acc-split", seed=13, sources=[src], steps=[{"split": {"test": 0.1, "validation": 0.1}}],
                 workdir=str(out / ".curate"), out_dir=str(out / "split"))
    res = p.run()
    st = res.manifest["steps"][0]["stats"]
    print(f"split rows={st['rows']} label_share={json.dumps(st['label_share'])} "
          f"max_share_deviation_pp={st['max_share_deviation_pp']}")
    ok &= st["max_share_deviation_pp"] <= 1.0
    print("ACCEPTANCE", "PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
