"""`dapo`: every informative pair, dynamic sampling, and an SFT (NLL) term on the better paths.

Takes from DAPO (Yu et al. 2025) dynamic sampling (groups whose raw accuracy is 0 or 1 are dropped
and the batch refilled with more prompts) and token-level averaging of the NLL term.
Departs: no clip-higher (there is no PPO ratio to clip) and no overlong shaping.
"""

from __future__ import annotations

import random

from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy
from gfpo_bench.types import RewardOutput, Rollouts


@PAIRINGS.register("dapo")
class DAPOPairing(PairingStrategy):
    dynamic_sampling = True

    def __init__(
        self, eps: float = 1e-6, max_pairs_per_group: int | None = None, sft_coef: float = 0.1
    ) -> None:
        super().__init__(eps=eps, max_pairs_per_group=max_pairs_per_group, sft_coef=sft_coef)

    def keep_group(self, correct: list[bool]) -> bool:
        return any(correct) and not all(correct)

    def select(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> list[tuple[int, int]]:
        r = rewards.total.tolist()
        return [p for idx in rollouts.group_indices() for p in self.cap(self.informative(idx, r), rng)]
