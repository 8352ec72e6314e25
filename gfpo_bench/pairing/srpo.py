"""`srpo`: correct path vs wrong path (right vs wrong).

Takes SRPO's (Zhang et al. 2025) premise that right-vs-wrong contrast is the anchor signal.
Departs: no two-stage training or history resampling here (`schedule=srpo_to_gfpo` stages it).
"""

from __future__ import annotations

import random

from gfpo_bench.config_schema import require
from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy, cap
from gfpo_bench.types import RewardOutput, Rollouts


@PAIRINGS.register("srpo")
class SRPOPairing(PairingStrategy):
    """Every right path against every wrong path, at most `max_pairs_per_group` of them, drawn at
    random. Right and wrong come from the final reward alone, so there is no `eps`. Defaults are
    conf/pairing/srpo.yaml's."""

    def __init__(
        self, name: str = "srpo", max_pairs_per_group: int | None = 4, sft_coef: float = 0.0
    ) -> None:
        super().__init__(name, sft_coef)
        self.max_pairs_per_group = require("pairing.max_pairs_per_group", max_pairs_per_group)

    def select(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> list[tuple[int, int]]:
        is_right = rewards.observed_correct.tolist()  # noised when reward.noise > 0, as for every method
        out = []
        for idx in rollouts.group_indices():
            right, wrong = [i for i in idx if is_right[i]], [i for i in idx if not is_right[i]]
            out += cap([(i, j) for i in right for j in wrong], self.max_pairs_per_group, rng)
        return out
