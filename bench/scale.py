"""How the local executor scales: time and peak RSS per corpus size.

For each size N (generated corpora of ~100-word documents, bench/_gen.py), two child processes
that do only the run (``curate build --quiet --no-report`` on a fresh cache), each measured with
``os.wait4`` (its own peak RSS, not this process's):

* **row-local**: jsonl source → clean, no output: the streaming part (sources write parts of
  ``batch_size`` rows, clean runs shard by shard); its RSS should be flat in N;
* **full**: jsonl source → clean → dedup (exact + near, MinHash-LSH) → jsonl output;
* **dedup**: the dedup step alone, rerun from the full run's cache (``curate build --only
  dedup``: cached upstream tables, no outputs), so its peak RSS is the step's (plus reading
  the cache). Dedup reads its input part by part (``Dedup.process_table``): per row it keeps a
  few fixed-size numbers, never texts, so this should stay flat-ish in N, well under 1.5 GiB at
  10M. The full run's RSS also holds what the outputs hold (an output that does not stream gets
  the final table as one frame);
* **ray** (``--ray``): the full pipeline again with ``--executor ray`` (a local Ray started by
  the build, or ``--address``), timed the same way; ``ray_time_ratio_vs_local`` (largest size)
  is printed above the last line. Only the driver's peak RSS is measured (Ray's workers are not
  its children).

    python bench/scale.py --small                    # 100k, 300k
    python bench/scale.py --docs 1000000,3000000,10000000
    python bench/scale.py --small --ray              # + the Ray executor's time against local

The last line is ``rss_10m_gib=<dedup-step peak RSS at the largest size> time_ratio_10m_vs_1m=<full
time at the largest size / at the smallest>``; with other sizes than 1M and 10M the same keys
are printed for the largest and smallest sizes run (a line above says which). Linear time means
a ratio equal to the size ratio (printed too, with the per-document ratio).
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

CLEAN = {"min_words": 3}
DEDUP = {"exact": True, "near": {"method": "minhash", "threshold": 0.8}}


def pipeline(corpus: Path, work: Path, full: bool, batch_size: int) -> Path:
    steps = f"  - clean: {json.dumps(CLEAN)}\n"
    outputs = "outputs: []\n"
    if full:
        steps += f"  - dedup: {json.dumps(DEDUP)}\n"
        outputs = f"outputs:\n  - jsonl: {{path: {work / 'out' / 'docs.jsonl'}}}\n"
    f = work / ("full.yaml" if full else "rowlocal.yaml")
    f.write_text(textwrap.dedent(f"""\
        name: scale
        workdir: {work / '.curate'}
        out_dir: {work / 'out'}
        batch_size: {batch_size}
        sources:
          - jsonl: {{path: {corpus}, name: docs}}
        steps:
        """) + steps + outputs)
    return f


def measure(pipe: Path, timeout: float, args: tuple[str, ...] = ("--force",)) -> tuple[float, float]:
    """(seconds, peak RSS in GiB) of ``curate build`` (with ``args``) in a child process."""
    cmd = [sys.executable, "-m", "curate.cli", "build", "--quiet", "--no-report", *args, str(pipe)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = t + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            sys.exit(f"{pipe.name}: over {timeout:.0f} s, killed")
        time.sleep(0.05)
    dt = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{pipe.name} failed:\n{proc.stderr.read().decode()[-3000:]}")
    return dt, usage.ru_maxrss / 2**20          # KiB -> GiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", default="1000000,3000000,10000000", help="sizes, comma-separated")
    ap.add_argument("--small", action="store_true", help="100k and 300k documents")
    ap.add_argument("--batch-size", type=int, default=50_000)
    ap.add_argument("--timeout", type=float, default=7200, help="per child run, seconds")
    ap.add_argument("--data", default=None, help="folder for the generated corpora (kept between runs)")
    ap.add_argument("--ray", action="store_true",
                    help="also run the full pipeline with --executor ray (a local Ray) and report its time "
                         "against the local executor's")
    ap.add_argument("--address", default=None, help="with --ray: the Ray cluster to join")
    a = ap.parse_args()
    sizes = [100_000, 300_000] if a.small else [int(x) for x in a.docs.split(",")]
    data = Path(a.data or Path(tempfile.gettempdir()) / "curate-bench")
    data.mkdir(parents=True, exist_ok=True)
    rows, ray_rows = [], []
    print(f"{'docs':>11} {'row-local s':>11} {'RSS GiB':>8} {'full s':>9} {'RSS GiB':>8} {'docs/s':>9}"
          f" {'dedup s':>9} {'RSS GiB':>8}")
    for n in sizes:
        corpus = data / f"docs-{n}.jsonl"         # generated in a child: this process stays small
        subprocess.run([sys.executable, str(HERE / "_gen.py"), str(corpus), str(n)], check=True,
                       stdout=subprocess.DEVNULL)
        with tempfile.TemporaryDirectory(dir=data) as tmp:
            work = Path(tmp)
            t_row, rss_row = measure(pipeline(corpus, work, False, a.batch_size), a.timeout)
            full = pipeline(corpus, work, True, a.batch_size)
            t_full, rss_full = measure(full, a.timeout)
            t_dd, rss_dd = measure(full, a.timeout, ("--only", "dedup"))
            if a.ray:         # the same file on Ray (its own folder; the driver's RSS only)
                args = ("--force", "--executor", "ray") + (("--address", a.address) if a.address else ())
                t_ray, rss_ray = measure(full, a.timeout, args)
                ray_rows.append((n, t_full, t_ray, rss_ray))
        rows.append((n, t_row, rss_row, t_full, rss_full, t_dd, rss_dd))
        print(f"{n:>11,} {t_row:>11.1f} {rss_row:>8.2f} {t_full:>9.1f} {rss_full:>8.2f} {n / t_full:>9,.0f}"
              f" {t_dd:>9.1f} {rss_dd:>8.2f}", flush=True)
    small, large = rows[0], rows[-1]
    size_ratio = large[0] / small[0]
    t_ratio = large[3] / small[3]
    print(f"row-local RSS: {small[2]:.2f} GiB at {small[0]:,} docs, {large[2]:.2f} GiB at {large[0]:,} "
          f"(x{large[2] / small[2]:.2f} for x{size_ratio:.0f} documents)")
    print(f"full-run time x{t_ratio:.2f} for x{size_ratio:.0f} documents: per-document time ratio "
          f"{t_ratio / size_ratio:.2f} (1.00 = linear); dedup step x{large[5] / small[5]:.2f}")
    print(f"dedup-step RSS: {small[6]:.2f} GiB at {small[0]:,} docs, {large[6]:.2f} GiB at {large[0]:,}; "
          f"full run {small[4]:.2f} -> {large[4]:.2f} GiB")
    for n, t_local, t_ray, rss_ray in ray_rows:
        print(f"ray executor at {n:,} docs: {t_ray:.1f} s against {t_local:.1f} s local (full run, "
              f"x{t_ray / t_local:.2f}; driver RSS {rss_ray:.2f} GiB)")
    if ray_rows:
        print(f"ray_time_ratio_vs_local={ray_rows[-1][2] / ray_rows[-1][1]:.2f} (at {ray_rows[-1][0]:,} docs)")
    if (small[0], large[0]) != (1_000_000, 10_000_000):
        print(f"keys below: dedup-step rss at the largest size ({large[0]:,}), full-run time ratio largest/smallest "
              f"({large[0]:,} / {small[0]:,}), not 10M / 1M")
    print(f"rss_10m_gib={large[6]:.2f} time_ratio_10m_vs_1m={t_ratio:.2f}")


if __name__ == "__main__":
    main()
