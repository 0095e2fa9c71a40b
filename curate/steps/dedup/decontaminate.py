"""The ``decontaminate`` step: reject training rows that share a long word n-gram (default 13,
as in GPT-3 / open-instruct decontamination) with any user-supplied evaluation set.

```yaml
- decontaminate:
    ngram: 13
    eval_sets:
      - {path: evals/gsm8k_test.jsonl, columns: [question, answer]}
      - {path: evals/mmlu_hf_folder, name: mmlu}      # a `datasets.save_to_disk` folder
```
Eval sets may be .jsonl/.json/.csv/.tsv/.parquet/.txt files, folders of such files, or
Hugging Face dataset folders (``save_to_disk``). A .json file holding an object reads its
``Instances`` (Natural Instructions task files). List-of-string columns (NI ``output``) count
item by item. N-grams of both sides are hashed to uint64 (the same vectorised
shingler as MinHash) and matched with one sorted-array lookup. Each rejected row names the
eval set and the matched n-gram in ``detail`` (and ``eval_set`` / ``matched_ngram`` columns).
Eval texts shorter than ``ngram`` words cannot match and are counted in the stats.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate import records as R
from curate.errors import DataError
from curate.registry import register_step
from curate.step import Step, StepConfig, StepContext, StepResult

from ._text import Normalize, check_columns, joined, normalized
from .minhash import shingle
from curate.extras import require

_TEXT_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt", ".arrow")


class EvalSet(BaseModel):
    """One evaluation set to protect."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="File, folder of files, or Hugging Face dataset folder.")
    name: str | None = Field(default=None, description="Name used in reports (default: file/folder name).")
    columns: list[str] | None = Field(default=None, description="Text columns (default: every string column).")

    @property
    def label(self) -> str:
        return self.name or Path(self.path).name


class DecontaminateConfig(StepConfig):
    """Options of the ``decontaminate`` step."""

    columns: list[str] = Field(default_factory=lambda: ["text"], min_length=1,
                               description="Training columns checked (joined with a newline).")
    eval_sets: list[EvalSet] = Field(min_length=1, description="Evaluation sets to protect.")
    ngram: int = Field(default=13, ge=3, le=64, description="Words per n-gram.")
    normalize: Normalize = Field(default_factory=lambda: Normalize(strip_punctuation=True),
                                 description="Canonicalisation applied to both sides.")


def _read_frame(path: Path) -> pl.DataFrame:
    suf = path.suffix.lower()
    if suf == ".jsonl":
        return pl.read_ndjson(path, infer_schema_length=None)
    if suf == ".json":
        import json
        obj = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(obj, dict):          # e.g. an NI task file: use its Instances
            obj = obj.get("Instances") or obj.get("data") or [obj]
        return pl.DataFrame(obj, infer_schema_length=None)
    if suf in (".csv", ".tsv"):
        return pl.read_csv(path, separator="\t" if suf == ".tsv" else ",", quote_char=None if suf == ".tsv" else '"',
                           infer_schema_length=0)
    if suf == ".parquet":
        return pl.read_parquet(path)
    if suf == ".arrow":
        return pl.read_ipc_stream(path) if path.stat().st_size else pl.DataFrame()
    if suf == ".txt":
        return pl.DataFrame({"text": path.read_text(encoding="utf-8").splitlines()})
    raise DataError(f"eval set {path}: unsupported file type {suf!r} (use {', '.join(_TEXT_SUFFIXES)})")


def load_eval_texts(spec: EvalSet, step: str) -> list[str]:
    """All text of an eval set, one string per row (chosen columns joined)."""
    path = Path(spec.path)
    if not path.exists():
        raise DataError(f"step {step}: eval set {spec.label!r}: {path} does not exist")
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        require("datasets", extra="ml")
        from datasets import load_from_disk
        ds = load_from_disk(str(path))
        parts = [ds[k] for k in ds] if hasattr(ds, "keys") else [ds]
        frames = [p.to_polars() for p in parts]
    elif path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.suffix.lower() in _TEXT_SUFFIXES and f.is_file())
        if not files:
            raise DataError(f"step {step}: eval set {spec.label!r}: no data files in {path}")
        frames = [_read_frame(f) for f in files]
    else:
        frames = [_read_frame(path)]
    texts: list[str] = []
    for f in frames:
        cols = spec.columns or [c for c, t in f.schema.items()
                                if t == pl.String or (isinstance(t, pl.List) and t.inner == pl.String)]
        missing = [c for c in cols if c not in f.columns]
        if missing:
            raise DataError(f"step {step}: eval set {spec.label!r}: column(s) {missing} not found "
                            f"(columns: {', '.join(f.columns)})")
        for c in cols:        # each column separately: an n-gram must not straddle two fields
            col = f[c].explode() if isinstance(f[c].dtype, pl.List) else f[c]
            texts += col.cast(pl.String).drop_nulls().to_list()
    return texts


@register_step("decontaminate")
class Decontaminate(Step):
    """Reject training rows sharing an n-gram with an eval set (see module docstring)."""

    Config = DecontaminateConfig
    scope = "global"
    version = "1"

    def _eval_index(self, seed: int) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
        cfg = self.config
        hashes, owners, names, stats = [], [], [], {}
        for k, spec in enumerate(cfg.eval_sets):
            texts = load_eval_texts(spec, self.name)
            norm = pl.Series(texts, dtype=pl.String).to_frame("t").select(
                normalized(pl.col("t"), cfg.normalize))["t"]
            sh = shingle(norm, cfg.ngram, seed=seed, single_spaced=cfg.normalize.collapse_whitespace)
            nwords = norm.str.split(" ").list.len().to_numpy()
            full = np.repeat(nwords >= cfg.ngram, sh.counts)   # drop the short-text whole shingle
            h = np.unique(sh.hashes[full])
            hashes.append(h)
            owners.append(np.full(len(h), k, dtype=np.int32))
            names.append(spec.label)
            stats[spec.label] = {"texts": len(texts), "ngrams": int(len(h)),
                                 "too_short": int((nwords < cfg.ngram).sum())}
        h, o = np.concatenate(hashes), np.concatenate(owners)
        order = np.argsort(h, kind="stable")
        return h[order], o[order], names, stats

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        cfg = self.config
        check_columns(df, cfg.columns, self.name)
        ev_h, ev_owner, names, ev_stats = self._eval_index(ctx.seed)
        norm = df.select(normalized(joined(cfg.columns), cfg.normalize).alias("t"))["t"]
        sh = shingle(norm, cfg.ngram, seed=ctx.seed, single_spaced=cfg.normalize.collapse_whitespace)
        pos = np.searchsorted(ev_h, sh.hashes)
        pos_c = np.minimum(pos, max(len(ev_h) - 1, 0))
        hit = (len(ev_h) > 0) & (ev_h[pos_c] == sh.hashes) if len(ev_h) else np.zeros(len(sh.hashes), bool)
        doc = np.repeat(np.arange(df.height), sh.counts)
        nwords = norm.str.split(" ").list.len().fill_null(0).to_numpy()
        hit &= nwords[doc] >= cfg.ngram
        hit_docs, first = np.unique(doc[hit], return_index=True)
        first_shingle = np.flatnonzero(hit)[first]
        k_in_doc = first_shingle - sh.offsets[hit_docs]           # = word position of the n-gram
        owner = ev_owner[pos_c[first_shingle]]
        words = norm.gather(hit_docs).str.split(" ").to_list()
        grams = [" ".join(w[k:k + cfg.ngram]) for w, k in zip(words, k_in_doc.tolist())]
        per_doc_hits = np.bincount(doc[hit], minlength=df.height)[hit_docs]
        mask = np.zeros(df.height, dtype=bool)
        mask[hit_docs] = True
        rej = df.filter(pl.Series(mask)).with_columns(
            pl.Series("eval_set", [names[o] for o in owner], dtype=pl.String),
            pl.Series("matched_ngram", grams, dtype=pl.String),
            pl.Series("_hits", per_doc_hits))
        detail = pl.format(f"shares {cfg.ngram}-gram \"{{}}\" with eval set {{}} ({{}} matching n-grams)",
                           pl.col("matched_ngram"), pl.col("eval_set"), pl.col("_hits"))
        rej = R.reject(rej, self.name, "contamination", detail).drop("_hits")
        by_set = {nm: int(sum(1 for o in owner if names[o] == nm)) for nm in names}
        stats = {"contaminated": int(mask.sum()), "rows_checked": df.height, "by_eval_set": by_set,
                 "eval_sets": ev_stats, "ngram": cfg.ngram}
        return StepResult(kept=df.filter(pl.Series(~mask)), rejected=rej, stats=stats)
