"""What sources, steps and outputs share: a registry name, a pydantic ``Config`` and a version."""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel


class Component:
    """Built from a ``Config`` instance, a mapping, or keyword arguments (``Clean(min_words=3)``)."""

    name: ClassVar[str] = "component"
    Config: ClassVar[type[BaseModel]]
    #: Bump when behaviour changes so cached results are recomputed.
    version: ClassVar[str] = "1"

    def __init__(self, config: BaseModel | dict[str, Any] | None = None, **kwargs: Any) -> None:
        if config is None:
            config = self.Config(**kwargs)
        elif isinstance(config, dict):
            config = self.Config(**{**config, **kwargs})
        elif kwargs:
            config = self.Config(**{**config.model_dump(), **kwargs})
        self.config = config
        #: The configuration as written (``${env:..}`` unresolved) — used for hashing and manifests.
        self.raw_config: dict[str, Any] = config.model_dump(mode="json")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"
