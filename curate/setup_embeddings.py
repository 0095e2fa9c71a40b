"""One-time export of the sentence-embedding models into curate's cache (`curate setup
embeddings`), so no run pays for an ONNX export or a minutes-long static distillation.

    curate setup embeddings                # ONNX fp32 (the CPU default backend)
    curate setup embeddings --int8         # + the int8 ONNX model (opt-in backend onnx-int8)
    curate setup embeddings --static       # + the model2vec static model (backend static)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from curate import embed as E
from curate.errors import CurateError


@dataclass
class Built:
    """One cached model: its backend, where it lives, seconds spent here, and its meta.json."""

    backend: str
    path: Path
    seconds: float
    meta: dict = field(default_factory=dict)


def stages(onnx: bool = True, int8: bool = False, static: bool = False) -> list[str]:
    """Backends to build, in order (int8 is quantised from the fp32 export)."""
    out = (["onnx"] if onnx or int8 else []) + (["onnx-int8"] if int8 else []) + (["static"] if static else [])
    if not out:
        raise CurateError("nothing to build: drop --no-onnx, or add --int8 / --static")
    return out


def build(backend: str, model: str | None = None) -> Built:
    """Build (or find) the cached model for ``backend``."""
    t0 = time.perf_counter()
    if backend == "static":
        path = E.static_model(model, build=True)
    elif backend in ("onnx", "onnx-int8"):
        path = E.exported_model(model, backend)[1].parent
    else:
        raise CurateError(f"nothing to set up for embedding backend {backend!r}")
    meta = E._read_json(path / "meta.json") if (path / "meta.json").is_file() else {}
    return Built(backend, path, round(time.perf_counter() - t0, 2), meta)


def setup_embeddings(model: str | None = None, onnx: bool = True, int8: bool = False,
                     static: bool = False,
                     on_stage: Callable[[str, Built | None], None] | None = None) -> list[Built]:
    """Build every requested backend's cached model; ``on_stage(backend, None)`` before each and
    ``on_stage(backend, built)`` after (the CLI's progress bar)."""
    out = []
    for b in stages(onnx, int8, static):
        if on_stage:
            on_stage(b, None)
        done = build(b, model)
        out.append(done)
        if on_stage:
            on_stage(b, done)
    return out
