"""curate: turn raw, messy sources into verified fine-tuning datasets for LLMs."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Pipeline", "RunResult", "__version__"]


def __getattr__(name: str):
    # Lazy: `import curate` and `curate --help` must not import polars/torch.
    if name == "Pipeline":
        from curate.pipeline import Pipeline
        return Pipeline
    if name == "RunResult":
        from curate.engine import RunResult
        return RunResult
    raise AttributeError(name)
