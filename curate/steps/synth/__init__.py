"""LLM data synthesis steps: ``synthesize`` (Self-Instruct instructions, SFT responses, DPO
preference pairs, Evol-Instruct rewrites) and ``verify`` (per-row checks before training).
Modules register their steps on import (see :mod:`curate.registry`)."""
