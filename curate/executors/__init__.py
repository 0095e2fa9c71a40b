"""Executors beside the local engine. ``executor: ray`` runs a pipeline on Ray Data
(:class:`curate.executors.ray_executor.RayEngine`, the [ray] extra, imported lazily); the options
model lives in :mod:`curate.executors.config` and needs no Ray."""
from __future__ import annotations

from curate.executors.config import RayOptions, RayStepOptions

__all__ = ["RayOptions", "RayStepOptions"]
