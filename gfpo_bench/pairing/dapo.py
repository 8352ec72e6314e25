"""`dapo`: every informative pair, dynamic sampling, and an SFT (NLL) term on the better paths.

Takes from DAPO (Yu et al. 2025) dynamic sampling (groups whose raw accuracy is 0 or 1 are dropped
and the batch refilled with more prompts) and token-level averaging of the NLL term.
Departs: no clip-higher (there is no PPO ratio to clip) and no overlong shaping.
Pairs are chosen as `random`'s (random_pairs.py), by default all of them.
"""

from __future__ import annotations

from gfpo_bench.pairing.base import PAIRINGS
from gfpo_bench.pairing.random_pairs import RandomPairing


@PAIRINGS.register("dapo")
class DAPOPairing(RandomPairing):
    """Defaults are conf/pairing/dapo.yaml's."""

    dynamic_sampling = True

    def __init__(
        self,
        name: str = "dapo",
        eps: float = 1e-6,
        max_pairs_per_group: int | None = None,
        sft_coef: float = 0.1,
    ) -> None:
        super().__init__(name=name, eps=eps, max_pairs_per_group=max_pairs_per_group, sft_coef=sft_coef)

    def keep_group(self, correct: list[bool]) -> bool:
        return any(correct) and not all(correct)
