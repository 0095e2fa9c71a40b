"""How well do curate's checks separate what a curator keeps from what they throw away?

verify: precision / recall / F1 of verify's default checks (junk = positive) on the labelled set
tests/data/verify_eval.jsonl (304 generations: curate's own augmenters at mild and destructive
settings, and hand-made hard cases), against the previous defaults (format, length, novelty: no
junk check) as the baseline row.

gate: precision / recall / F1 of the augmentation gate (meaning-changed = positive) on
tests/data/gate_eval.jsonl (330 pairs: curate's WordNet and noise augmenters, contraction and
punctuation edits → kept; antonym, negation, number, entity, weekday and sister-term edits →
changed). A `gate_copy` rejection counts as meaning kept (the variant is too close to be useful,
not wrong). Labels come from how each edit was made: WordNet swaps are labelled kept although
some do shift meaning, so part of the gate's "false positives" there are right calls. Baselines: nlpaug's augmenters with no gate (every variant accepted), and the previous
gate (embedding cosine and length ratio only).

    .venv/bin/python bench/gate.py [--small]
Last line: gate_f1=<x> verify_f1=<y>
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _prf(pred: list[bool], gold: list[bool]) -> tuple[float, float, float]:
    tp = sum(p and g for p, g in zip(pred, gold))
    fp = sum(p and not g for p, g in zip(pred, gold))
    fn = sum(g and not p for p, g in zip(pred, gold))
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)


def _verify_rejects(rows: list[dict], junk: bool, workdir: Path) -> list[bool]:
    from curate import Pipeline
    data = [{"prompt": "Reply to the message.", "response": r["text"], "i": i} for i, r in enumerate(rows)]
    res = Pipeline(name=f"gate-bench-{int(junk)}", sources=[{"inline": {"rows": data}}],
                   steps=[{"verify": {"junk": junk, "novelty": False}}],
                   workdir=str(workdir / ".curate"), out_dir=str(workdir / f"out{int(junk)}")).run()
    rejected = set(res.rejects().get_column("i").to_list()) if res.rejects().height else set()
    return [i in rejected for i in range(len(rows))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="same set (it is small already)")
    ap.parse_args()
    import tempfile
    rows = [json.loads(ln) for ln in (ROOT / "tests/data/verify_eval.jsonl").read_text(encoding="utf-8").split("\n") if ln]
    gold = [r["label"] == "junk" for r in rows]
    print(f"verify on {len(rows)} labelled generations ({sum(gold)} junk)")
    print(f"{'checks':<34} {'precision':>9} {'recall':>7} {'f1':>6}")
    f1_new = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, junk in (("previous defaults (no junk check)", False), ("curate defaults (junk check)", True)):
            pred = _verify_rejects(rows, junk, Path(tmp))
            p, r, f = _prf(pred, gold)
            print(f"{name:<34} {p:>9.3f} {r:>7.3f} {f:>6.3f}")
            if junk:
                f1_new = f
                by_kind: dict[str, list[int]] = {}
                for row, pr in zip(rows, pred):
                    k = row["kind"].rsplit(":", 1)[-1] if row["kind"].startswith("augmenter") else row["kind"]
                    right = pr == (row["label"] == "junk")
                    by_kind.setdefault(f"{row['label']}/{k}", [0, 0])[0 if right else 1] += 1
                for k, (ok, bad) in sorted(by_kind.items()):
                    print(f"  {k:<32} right {ok:>4}  wrong {bad:>3}")
    gate_f1 = _gate_rows()
    print(f"gate_f1={gate_f1:.3f} verify_f1={f1_new:.3f}")


def _gate_rows() -> float:
    from curate.augmenters.gate import GateConfig, check
    pairs = [json.loads(ln) for ln in (ROOT / "tests/data/gate_eval.jsonl").read_text(encoding="utf-8").split("\n") if ln]
    gold = [p["label"] == "changed" for p in pairs]
    noise = [p["kind"].split(":")[-1] in ("keyboard", "char_noise", "ocr") for p in pairs]
    print(f"\ngate on {len(pairs)} labelled pairs ({sum(gold)} meaning-changed)")
    print(f"{'gate':<34} {'precision':>9} {'recall':>7} {'f1':>6}")
    p, r, f = _prf([False] * len(pairs), gold)
    print(f"{'nlpaug augmenters, no gate':<34} {p:>9.3f} {r:>7.3f} {f:>6.3f}")
    f1 = 0.0
    for name, cfg in (("previous gate (cosine + length)", GateConfig(meaning_checks=False)),
                      ("curate gate (meaning checks)", GateConfig())):
        pred = [False] * len(pairs)
        reasons: dict[str, int] = {}
        for word_level in (True, False):
            idx = [i for i in range(len(pairs)) if noise[i] != word_level]
            res = check([pairs[i]["original"] for i in idx], [pairs[i]["edited"] for i in idx], cfg,
                        word_level=word_level)
            for i, reason in zip(idx, res.reasons):
                pred[i] = reason not in (None, "gate_copy")   # a near-copy keeps meaning (rejected as useless)
                if reason:
                    reasons[reason] = reasons.get(reason, 0) + 1
        p, r, f = _prf(pred, gold)
        print(f"{name:<34} {p:>9.3f} {r:>7.3f} {f:>6.3f}   {dict(sorted(reasons.items()))}")
        f1 = f
        by_kind: dict[str, list[int]] = {}
        for pair, pr in zip(pairs, pred):
            by_kind.setdefault(f"{pair['label']}/{pair['kind']}", [0, 0])[0 if pr == (pair["label"] == "changed") else 1] += 1
    for k, (ok, bad) in sorted(by_kind.items()):
        print(f"  {k:<32} right {ok:>4}  wrong {bad:>3}")
    return f1


if __name__ == "__main__":
    main()
