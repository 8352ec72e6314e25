"""Samplers, registered by name. Importing this package registers all of them."""

from gfpo_bench.sampling import branch, independent  # noqa: F401  (registers sampler=branch, independent)
from gfpo_bench.sampling.base import SAMPLERS, GenerationConfig, Sampler

__all__ = ["SAMPLERS", "GenerationConfig", "Sampler"]
