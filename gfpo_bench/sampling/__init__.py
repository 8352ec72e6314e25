"""Samplers, registered by name. Importing this package registers all of them."""

from gfpo_bench.sampling import independent  # noqa: F401  (registers sampler=independent)
from gfpo_bench.sampling.base import SAMPLERS, GenerationConfig, Sampler

__all__ = ["SAMPLERS", "GenerationConfig", "Sampler"]
