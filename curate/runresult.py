"""What a run returns and records: the per-part report, the run result (the final table,
rejects, manifest), library versions and the accounting check every step must pass. The engine
re-exports these names (``from curate.engine import RunResult`` keeps working)."""
from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate import records as R
from curate.errors import CurateError, StepError

LIBRARIES = ("polars", "pyarrow", "pandas", "numpy", "pydantic", "datasets", "transformers", "torch",
             "tokenizers", "spacy", "nltk", "nlpaug", "scikit-learn", "imbalanced-learn", "ftfy",
             "lingua-language-detector", "sqlalchemy", "boto3", "beautifulsoup4", "peft", "trl",
             "sentence-transformers", "rensa")


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


@dataclass
class StepReport:
    """One line of the closing table."""

    kind: str                      # "source", "step" or "output"
    name: str
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    rows_created: int = 0
    seconds: float = 0.0
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    failed: bool = False           # the run stopped here (the closing table says so)
    warnings: list[str] = field(default_factory=list)   # printed under the closing table, kept in the manifest


@dataclass
class RunResult:
    """What :meth:`Pipeline.run` returns: the manifest, paths written and per-step reports."""

    manifest: dict[str, Any]
    manifest_path: Path | None
    outputs: list[Path]
    rejects_path: Path | None
    reports: list[StepReport]
    final_path: Path | None = None
    planned: bool = False
    training: Any = None           # curate.train.TrainResult when a train: section ran
    run_dir: Path | None = None    # out/<name>/runs/<UTC time>/: this run's manifest and rejects
    failed: bool = False           # attached to the exception of a failed run (``e.result``)

    def data(self) -> pl.DataFrame:
        """The final table (after the last step)."""
        if self.final_path is None:
            raise CurateError("no data: the run was a dry run")
        from curate.cache import read_entry           # a cache entry folder (Parquet parts)
        return read_entry(self.final_path) if self.final_path.is_dir() else pl.read_parquet(self.final_path)

    def rejects(self) -> pl.DataFrame:
        """Every rejected row with step, reason and detail; with no rejects, an empty table that
        still has those columns and the data's (so filters and joins on it work)."""
        if self.rejects_path is None or not self.rejects_path.exists():
            lead = pl.DataFrame(schema={c: pl.String for c in (R.STEP, R.REASON, R.DETAIL, R.ID, R.SOURCE, R.ORIGIN)})
            if self.final_path is not None and self.final_path.exists():
                from curate.cache import entry_table
                data = entry_table(self.final_path).schema() if self.final_path.is_dir() \
                    else pl.read_parquet_schema(self.final_path)
                return lead.hstack(pl.DataFrame(schema={c: t for c, t in data.items() if c not in lead.columns}))
            return lead
        if self.rejects_path.suffix == ".parquet":
            return pl.read_parquet(self.rejects_path)
        return pl.read_ndjson(self.rejects_path, infer_schema_length=None)

    # Python API: the final table in the shape your next tool wants
    def to_polars(self) -> pl.DataFrame:
        """The final table as a polars DataFrame (same as :meth:`data`)."""
        return self.data()

    def to_pandas(self):
        """The final table as a pandas DataFrame (Arrow-backed; needs pandas: the [ml] extra)."""
        from curate.extras import require
        require("pandas", extra="ml", what="RunResult.to_pandas")
        return self.data().to_pandas()

    def to_dataset(self):
        """The final table as a ``datasets.Dataset`` (zero-copy from Arrow; the [ml] extra)."""
        from curate.extras import require
        datasets = require("datasets", extra="ml", what="RunResult.to_dataset")
        return datasets.Dataset(self.data().to_arrow())

    @property
    def all_cached(self) -> bool:
        """Every source and step came from the cache (outputs may still have been rewritten)."""
        return all(r.cached for r in self.reports if r.kind in ("source", "step"))

    @property
    def nothing_written(self) -> bool:
        """All cached and no output rewritten: the run changed nothing."""
        return self.all_cached and all(r.cached for r in self.reports if r.kind == "output")


def check_accounting(step: str, df_in: pl.DataFrame, kept: pl.DataFrame,
                     rejected: pl.DataFrame, kept_pos: np.ndarray | None = None) -> int:
    """Every input id must leave exactly once (kept or rejected); returns rows created.

    ``kept_pos``: the positions in ``df_in`` of the kept rows, when the engine found ``kept`` to
    be ``df_in`` with rows removed (see ``engine._kept_rows``). Then, when the input ids are
    distinct, the check is that the rejected ids are exactly the input ids at the other
    positions: a sort of the (usually few) rejected ids instead of joins over every id."""
    for f, what in ((kept, "kept"), (rejected, "rejected")):
        if f.height and R.ID not in f.columns:
            raise StepError(f"step {step}: {what} rows have no `id` column")
    if rejected.height:
        if R.REASON not in rejected.columns or rejected[R.REASON].null_count():
            raise StepError(f"step {step}: rejected rows must all carry a `reason`")
    if kept_pos is not None and _only_removed(df_in, rejected, kept_pos):
        return 0
    parts = [f.select(pl.col(R.ID).cast(pl.String)) for f in (kept, rejected) if f.height]
    out_ids = pl.concat(parts) if parts else pl.DataFrame({R.ID: []}, schema={R.ID: pl.String})
    dup = out_ids.filter(pl.col(R.ID).is_duplicated())
    if dup.height:
        raise StepError(f"step {step}: accounting broken: id {dup[R.ID][0]!r} leaves the step "
                        f"{dup.filter(pl.col(R.ID) == dup[R.ID][0]).height} times")
    in_ids = df_in.select(pl.col(R.ID).cast(pl.String))
    lost = in_ids.join(out_ids, on=R.ID, how="anti")
    if lost.height:
        raise StepError(f"step {step}: accounting broken: {lost.height} input rows neither kept nor "
                        f"rejected (e.g. id {lost[R.ID][0]!r})")
    created = out_ids.height - in_ids.height
    assert df_in.height + created == kept.height + rejected.height
    return created


def _only_removed(df_in: pl.DataFrame, rejected: pl.DataFrame, kept_pos: np.ndarray) -> bool:
    """True when the input ids are distinct (their 64-bit hashes are) and the rejected ids are
    exactly those not at ``kept_pos``; False sends the caller to the full check."""
    ids = df_in[R.ID]
    if ids.null_count() or ids.hash().n_unique() != ids.len():
        return False
    rest = np.ones(df_in.height, dtype=bool)
    rest[kept_pos] = False
    left = ids.cast(pl.String).filter(pl.Series(rest))
    if left.len() != rejected.height:
        return False
    if not rejected.height:
        return True
    return left.sort().equals(rejected[R.ID].cast(pl.String).sort().alias(left.name))
