"""Pairing strategies, one module each, registered by name. Importing this package registers all.

A run builds its strategy from config (`hydra.utils.instantiate(cfg.pairing)`: conf/pairing/<name>.yaml
names the class in `_target_`). The registry holds the valid names: a strategy checks that its
`name` (the method's label in logs and summary.json) is its own, and tests and scripts build one
by name with `build_pairing`.

Names follow the project's source text, not the published papers with the same acronyms: each
module's docstring says what it takes from which paper and where it departs.
"""

from gfpo_bench import grpo  # noqa: F401, E402  (registers 'grpo': the method that makes no pairs; grpo.py)
from gfpo_bench.pairing import dapo, gfpo, random_pairs, srpo, top2, vapo  # noqa: F401  (register)
from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy, annotate

__all__ = ["PAIRINGS", "PairingStrategy", "annotate", "build_pairing"]


def build_pairing(name: str, **kwargs) -> PairingStrategy:
    """Instantiate a registered strategy with its code defaults (= its YAML's) overridden by `kwargs`;
    an unknown name lists the valid ones."""
    return PAIRINGS.get(name)(**kwargs)
