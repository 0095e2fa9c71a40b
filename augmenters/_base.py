"""The augmenter protocol: a batched ``texts -> texts`` transform with a pydantic config.

Augmenters are plain objects (not pipeline steps): the ``augment`` step and ``balance``'s SMOTE
text generator build them by name from a ``{name: {options}}`` spec. Each returns one output per
input (``None`` where it cannot produce one, e.g. empty text), is seeded, and reports the
parameters that are recorded on every augmented row.
"""
from __future__ import annotations

import importlib
import json
import random
from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import Any, ClassVar, Iterator, Sequence

from pydantic import BaseModel, ConfigDict

from curate.errors import CurateError


class AugmenterConfig(BaseModel):
    """Options every augmenter accepts (none yet); subclasses add theirs."""

    model_config = ConfigDict(extra="forbid")


class Augmenter(ABC):
    """Base class: set ``Config`` and implement :meth:`augment` over a whole batch."""

    name: ClassVar[str] = "augmenter"
    Config: ClassVar[type[AugmenterConfig]] = AugmenterConfig
    #: Language(s) the augmenter is meant for (ISO 639-1); ``None`` = any.
    languages: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, config: AugmenterConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        if config is None:
            config = self.Config(**kwargs)
        elif isinstance(config, dict):
            config = self.Config(**{**config, **kwargs})
        self.config = config

    @abstractmethod
    def augment(self, texts: Sequence[str], seed: int) -> list[str | None]:
        """Return one augmented text per input (``None`` when no variant can be made)."""

    def params(self) -> dict[str, Any]:
        """What is recorded on each row: the augmenter name and its configuration."""
        return {"augmenter": self.name, **self.config.model_dump(mode="json")}

    def params_json(self) -> str:
        return json.dumps(self.params(), sort_keys=True, default=str)


_AUGMENTERS: dict[str, type[Augmenter]] = {}
#: augmenter name -> module that defines it (imported on first use; keeps imports cheap).
_MODULES = {
    "backtranslate": "curate.augmenters.backtranslate",
    "embedding_swap": "curate.augmenters.embedding_swap",
    "wordnet": "curate.augmenters.wordnet",
    "char_noise": "curate.augmenters.noise", "keyboard": "curate.augmenters.noise", "ocr": "curate.augmenters.noise",
    "word_dropout": "curate.augmenters.noise",
}


def register_augmenter(name: str):
    """Register an :class:`Augmenter` subclass under ``name``."""
    def deco(cls: type[Augmenter]) -> type[Augmenter]:
        if name in _AUGMENTERS and _AUGMENTERS[name] is not cls:
            raise ValueError(f"augmenter {name!r} registered twice")
        _AUGMENTERS[name] = cls
        cls.name = name
        return cls
    return deco


def augmenter_class(name: str) -> type[Augmenter]:
    if name not in _AUGMENTERS and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name not in _AUGMENTERS:
        raise CurateError(f"unknown augmenter {name!r}; known: {', '.join(sorted(set(_MODULES) | set(_AUGMENTERS)))}")
    return _AUGMENTERS[name]


def build_augmenter(spec: "str | dict[str, AugmenterConfig | dict[str, Any] | None] | Augmenter") -> Augmenter:
    """``"noise"`` / ``{"embedding_swap": {"aug_p": 0.2}}`` / ``{"wordnet": WordNetConfig()}`` / an
    instance -> an Augmenter. Pipeline options reach here already checked by
    :mod:`curate.augmenters.spec`."""
    if isinstance(spec, Augmenter):
        return spec
    if isinstance(spec, str):
        return augmenter_class(spec)()
    if isinstance(spec, dict) and len(spec) == 1:
        (name, cfg), = spec.items()
        return augmenter_class(name)(cfg or {})
    raise CurateError(f"an augmenter is written as {{name: {{options}}}}, got {spec!r}")


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python's and numpy's global RNGs (nlpaug uses both) and restore them afterwards."""
    import numpy as np
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
