"""Options of the Ray executor (the ``ray:`` block of a pipeline file). No Ray import here:
the pipeline file is validated without the [ray] extra installed.

```yaml
executor: ray
ray:
  address: ray://head:10001      # unset: start a local Ray on this machine
  num_cpus: 8                    # local Ray only
  max_retries: 3                 # a task whose worker dies is run again
  shuffle: sort                  # dedup's key shuffle: sort or hash
  steps:                         # per step (by name, or NAME#K as in --only)
    augment: {actors: 4, num_gpus: 1}
    dedup: {num_cpus: 1}
```
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RayStepOptions(BaseModel):
    """Resources of one step's Ray tasks or actors."""

    model_config = ConfigDict(extra="forbid")
    num_cpus: float = Field(default=1.0, gt=0, description="CPUs each task or actor reserves.")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs each actor reserves (model steps: "
                            "embeddings, translation, LLMs). A step with num_gpus > 0 runs as an actor pool.")
    actors: int | None = Field(default=None, ge=1, description="Run the step as a pool of this many "
                               "actors (each loads its model once) instead of stateless tasks.")


class RayOptions(BaseModel):
    """Where and how the Ray executor runs."""

    model_config = ConfigDict(extra="forbid")
    address: str | None = Field(default=None, description="Ray cluster to join (`auto`, `ray://host:10001`, "
                                "`host:6379`); unset starts a local Ray for the run and stops it after.")
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of the local Ray (ignored with an address).")
    max_retries: int | None = Field(default=None, ge=0, description="Times a task is retried when its worker "
                                    "dies (unset: Ray's default, 3; actors restart without limit). Block writes "
                                    "are atomic, so a retry never duplicates rows.")
    shuffle: Literal["sort", "hash"] = Field(
        default="sort", description="dedup's shuffle on keys: `sort` (Ray Data's sort; cheap to start, "
        "fine to ~1e8 keys per node) or `hash` (hash repartition with aggregator actors; large clusters).")
    steps: dict[str, RayStepOptions] = Field(default_factory=dict,
                                             description="Per-step resources, keyed by step name or NAME#K.")

    def for_step(self, label: str, name: str) -> RayStepOptions:
        """Options of the step labelled ``label`` (``NAME`` or ``NAME#K``), else its name, else defaults."""
        return self.steps.get(label) or self.steps.get(name) or RayStepOptions()
