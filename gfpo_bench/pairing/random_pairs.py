"""`random`: any two paths of a group with different reward (the baseline), at most
`max_pairs_per_group` of them, drawn at random. `dapo` (dapo.py) pairs the same way.
"""

from __future__ import annotations

import random

from gfpo_bench.config_schema import require
from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy, cap, informative
from gfpo_bench.types import RewardOutput, Rollouts


@PAIRINGS.register("random")
class RandomPairing(PairingStrategy):
    """Defaults are conf/pairing/random.yaml's."""

    def __init__(
        self,
        name: str = "random",
        eps: float = 1e-6,
        max_pairs_per_group: int | None = 4,
        sft_coef: float = 0.0,
    ) -> None:
        super().__init__(name, sft_coef)
        self.eps = require("pairing.eps", eps)  # ranges: config_schema.py PAIRING_RULES
        self.max_pairs_per_group = require("pairing.max_pairs_per_group", max_pairs_per_group)

    def select(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> list[tuple[int, int]]:
        r = rewards.total.tolist()
        return [
            pair
            for idx in rollouts.group_indices()
            for pair in cap(informative(idx, r, self.eps), self.max_pairs_per_group, rng)
        ]
