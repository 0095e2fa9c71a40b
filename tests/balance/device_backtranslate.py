"""GPU check for back-translation (run on a CUDA machine; not collected by pytest).

Builds two tiny random Marian models, back-translates a batch on CUDA (fp16) and reports the
device/dtype used, that every non-empty row got an output, and rows/s batched vs one row per call.

    python tests/balance/device_backtranslate.py [--rows 512]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=512)
    args = ap.parse_args()
    import torch

    from curate.augmenters._base import build_augmenter
    from curate.augmenters.backtranslate import load_seq2seq
    from curate.testing import DEFAULT_CORPUS, tiny_marian

    with tempfile.TemporaryDirectory() as tmp:
        fw = str(tiny_marian(Path(tmp) / "fw", d_model=64, layers=2, seed=0))
        bw = str(tiny_marian(Path(tmp) / "bw", d_model=64, layers=2, seed=1))
        texts = [DEFAULT_CORPUS[i % len(DEFAULT_CORPUS)][: 20 + (i * 7) % 50] for i in range(args.rows)]
        texts[3] = ""
        opts = {"forward_model": fw, "backward_model": bw, "max_new_tokens": 24}
        batched = build_augmenter({"backtranslate": {**opts, "batch_size": 128}})
        single = build_augmenter({"backtranslate": {**opts, "batch_size": 1}})
        batched.augment(texts[:8], seed=0)                       # warm-up (load + CUDA init)
        _, model, dev = load_seq2seq(fw, None)
        print(f"cuda_available={torch.cuda.is_available()} device={dev} dtype={next(model.parameters()).dtype}")
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = batched.augment(texts, seed=0)
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        t_b = time.perf_counter() - t0
        n1 = min(64, len(texts))
        t0 = time.perf_counter()
        single.augment(texts[:n1], seed=0)
        t_s = time.perf_counter() - t0
        nonempty = [o for t, o in zip(texts, out) if t]
        print(f"rows={len(texts)} outputs={sum(o is not None for o in out)} empty_row_output={out[3]!r}")
        print(f"batched_rows_per_s={len(texts) / t_b:.1f} single_rows_per_s={n1 / t_s:.1f}")
        ok = out[3] is None and sum(o is not None for o in nonempty) >= 0.9 * len(nonempty) and dev.startswith("cuda")
        print("DEVICE_CHECK", "PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
