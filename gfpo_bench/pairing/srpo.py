"""`srpo`: correct path vs wrong path (right vs wrong).

Takes SRPO's (Zhang et al. 2025) premise that right-vs-wrong contrast is the anchor signal.
Departs: no two-stage training or history resampling here (`schedule=srpo_to_gfpo` stages it).
"""

from __future__ import annotations

import random

from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy
from gfpo_bench.types import RewardOutput, Rollouts


@PAIRINGS.register("srpo")
class SRPOPairing(PairingStrategy):
    def select(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> list[tuple[int, int]]:
        # the observed final reward (noised when reward.noise > 0), not the hidden raw correctness
        ok = (rewards.final > 0.5).tolist()
        out = []
        for idx in rollouts.group_indices():
            right, wrong = [i for i in idx if ok[i]], [i for i in idx if not ok[i]]
            out += self.cap([(i, j) for i in right for j in wrong], rng)
        return out
