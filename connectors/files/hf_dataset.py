"""Source ``hf_dataset``: a dataset folder written by ``datasets``' ``save_to_disk``; locator
``hf_dataset:<dir>:<row>`` (0-based; ``<dir>/<split>`` for one split of a DatasetDict)."""
from __future__ import annotations

import os
from typing import Iterator

import polars as pl
from pydantic import Field

from curate.connectors._textio import BATCH_ROWS, with_locators
from curate.connectors.files.base import FileSourceConfig, expand_paths, stat_fingerprint
from curate.errors import DataError
from curate.extras import require
from curate.registry import register_source
from curate.source import Source, SourceBatch


class HfDatasetConfig(FileSourceConfig):
    """A saved Hugging Face dataset (folder, glob of folders, or a list)."""

    path: str | list[str] = Field(
        description="A folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`, a glob "
                    "of such folders, or a list of them.")

    split: str | None = Field(
        default=None,
        description="For a DatasetDict: the split to read (default: every split, in order, with "
                    "a `split` column added).")


@register_source("hf_dataset")
class HfDatasetSource(Source):
    """Reads Arrow data of a saved dataset in row batches, without copying it to Python objects."""

    Config = HfDatasetConfig
    batch_rows = BATCH_ROWS

    def paths(self) -> list[str]:
        return expand_paths(self.config.path, what="dataset folder", dirs=True,
                            storage_options=self.config.storage_options)

    def fingerprint(self) -> str | None:
        return stat_fingerprint(self.paths(), self.raw_config)

    def read(self) -> Iterator[SourceBatch]:
        require("datasets", extra="ml", what="the hf_dataset source")
        from datasets import Dataset, DatasetDict, load_from_disk
        left = self.config.limit
        for found in self.paths():
            path = str(found)
            try:
                ds = load_from_disk(path, storage_options=self.config.storage_options or None)
            except (FileNotFoundError, ValueError) as e:
                raise DataError(f"{path}: not a dataset saved with save_to_disk ({e})") from None
            parts: list[tuple[str, Dataset, str | None]]
            if isinstance(ds, DatasetDict):
                if self.config.split is not None:
                    if self.config.split not in ds:
                        raise DataError(f"{path}: no split {self.config.split!r}; splits are: "
                                        f"{', '.join(map(repr, ds))}")
                    parts = [(os.path.join(path, self.config.split), ds[self.config.split], None)]
                else:
                    parts = [(os.path.join(path, name), d, name) for name, d in ds.items()]
            else:
                if self.config.split is not None:
                    raise DataError(f"{path}: `split: {self.config.split}` given but the folder holds "
                                    "a single Dataset, not a DatasetDict")
                parts = [(path, ds, None)]
            for where, d, split in parts:
                arrow = d.with_format("arrow")
                n = len(d) if left is None else min(len(d), left)
                for start in range(0, n, self.batch_rows):
                    stop = min(start + self.batch_rows, n)
                    df = pl.from_arrow(arrow[start:stop])
                    assert isinstance(df, pl.DataFrame)
                    if split is not None:
                        df = df.with_columns(pl.lit(split, dtype=pl.String).alias("split"))
                    yield SourceBatch(with_locators(df, f"hf_dataset:{where}", range(start, stop)))
                if n == 0 and len(d) == 0:
                    empty = pl.from_arrow(d.data.table.schema.empty_table())
                    assert isinstance(empty, pl.DataFrame)
                    yield SourceBatch(with_locators(empty, f"hf_dataset:{where}", []))
                if left is not None:
                    left -= n
                    if left <= 0:
                        return
