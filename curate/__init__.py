"""curate: turn raw, messy sources into verified fine-tuning datasets for LLMs.

    from curate import Pipeline, from_frame
    result = Pipeline(sources=[df], steps=[{"clean": {"min_words": 3}}, {"dedup": {}}]).run()
    result.to_pandas(); result.to_dataset(); result.rejects()
    kept, rejected = Clean(min_words=3).run(df)       # one step, no pipeline
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Pipeline", "RunResult", "from_frame", "__version__"]

# Lazy: `import curate` and `curate --help` must not import polars, let alone torch.
_LAZY = {
    "Pipeline": ("curate.pipeline", "Pipeline"),
    "RunResult": ("curate.engine", "RunResult"),
    "from_frame": ("curate.connectors.memory", "from_frame"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(name)
