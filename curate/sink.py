"""The output protocol: a sink writes the final table in one format, atomically."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate.component import Component


class SinkConfig(BaseModel):
    """Options every output accepts."""

    model_config = ConfigDict(extra="forbid")
    sources: list[str] | None = Field(
        default=None, description="Write only rows whose `origin` is one of these source names.")


class Sink(Component, ABC):
    """Base class for outputs. Subclasses implement :meth:`targets` and :meth:`write`."""

    name: ClassVar[str] = "output"
    Config: ClassVar[type[SinkConfig]] = SinkConfig

    def __init__(self, config: SinkConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        #: What the last ``write`` wants recorded in the manifest (counts, warnings, ...).
        self.stats: dict[str, Any] = {}

    @abstractmethod
    def targets(self) -> list[Path]:
        """Paths this output will write (files or folders); checked for clashes before running."""

    @abstractmethod
    def write(self, df: pl.DataFrame, seed: int) -> list[Path]:
        """Write ``df``; return the files written (each written atomically)."""

    def select(self, df: pl.DataFrame) -> pl.DataFrame:
        from curate import records as R
        if self.config.sources is not None and R.ORIGIN in df.columns:
            return df.filter(pl.col(R.ORIGIN).is_in(self.config.sources))
        return df

    def describe(self) -> str:
        return f"{self.name} → {', '.join(str(p) for p in self.targets())}"
