"""`random`: any two paths of a group with different reward (the baseline)."""

from __future__ import annotations

import random

from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy
from gfpo_bench.types import RewardOutput, Rollouts


@PAIRINGS.register("random")
class RandomPairing(PairingStrategy):
    def select(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> list[tuple[int, int]]:
        r = rewards.total.tolist()
        return [p for idx in rollouts.group_indices() for p in self.cap(self.informative(idx, r), rng)]
