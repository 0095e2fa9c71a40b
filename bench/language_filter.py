"""Language filter speed and false rejects on 2,000 real SMS (all English; issue #18 / #12).

Each setting runs in a fresh process (lingua loads its models on first use, as in a real build)
and is timed cold and again warm in that process. Prints one line per setting: seconds, rows
rejected as `language` and rows kept as `language_uncertain`; the last line is the cold-time ratio
of the old default (all 75 languages, no uncertainty floor) to the new default.

    python bench/language_filter.py [--rows 2000]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "pipelines" / "data" / "sms_spam_collection.tsv"

SETTINGS = {
    "old default: all 75 languages, no floor": dict(language_candidates="all", language_uncertain_below=0),
    "all 75 languages + uncertainty floor": dict(language_candidates="all"),
    "new default: keep-list + 15 candidates": dict(),
    "4 candidates (en de fr es)": dict(language_candidates=["en", "de", "fr", "es"]),
    "new default, lingua low-accuracy mode": dict(language_low_accuracy=True),
}


def one(name: str, rows: int) -> dict:
    """Run one setting in this process (called in a child)."""
    from curate.step import StepContext
    from curate.steps.clean import Clean
    import polars as pl

    lines = DATA.read_text(encoding="utf-8").splitlines()[1:rows + 1]
    df = pl.DataFrame({"id": [str(i) for i in range(len(lines))], "text": [ln.split("\t", 1)[1] for ln in lines]})
    step = Clean(languages=["en"], **SETTINGS[name])
    times = []
    for _ in range(2):
        t = time.perf_counter()
        res = step.process(df, StepContext("clean", 0, 0, Path("/tmp")))
        times.append(time.perf_counter() - t)
    return {"cold": times[0], "warm": times[1], "rejected": res.rejected.height,
            "uncertain": res.stats.get("language_uncertain", 0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.rows)))
        return
    results = {}
    for name in SETTINGS:
        out = subprocess.run([sys.executable, __file__, "--rows", str(a.rows), "--one", name],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = results[name] = json.loads(out)
        print(f"{name:42s} cold {r['cold']:6.2f} s  warm {r['warm']:5.2f} s  "
              f"rejected {r['rejected']:3d}  language_uncertain {r['uncertain']:3d}", flush=True)
    old, new = results[list(SETTINGS)[0]], results[list(SETTINGS)[2]]
    print(f"speedup_cold_old_over_new={old['cold'] / new['cold']:.1f}")


if __name__ == "__main__":
    main()
