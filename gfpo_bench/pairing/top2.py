"""`top2`: top-1 vs top-2 path of a group, where top-2 is the best path whose reward is lower
than top-1's by more than eps (equal-reward paths carry no preference).
"""

from __future__ import annotations

import random

from gfpo_bench.config_schema import require
from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy
from gfpo_bench.types import RewardOutput, Rollouts


@PAIRINGS.register("top2")
class Top2Pairing(PairingStrategy):
    """One pair per group at most, so no `max_pairs_per_group`. Defaults are conf/pairing/top2.yaml's."""

    def __init__(self, name: str = "top2", eps: float = 1e-6, sft_coef: float = 0.0) -> None:
        super().__init__(name, sft_coef)
        self.eps = require("pairing.eps", eps)  # its range: config_schema.py PAIRING_RULES

    def select(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> list[tuple[int, int]]:
        r = rewards.total.tolist()
        out = []
        for idx in rollouts.group_indices():
            order = sorted(idx, key=lambda i: (-r[i], rng.random()))
            second = next((i for i in order[1:] if r[order[0]] - r[i] > self.eps), None)
            if second is not None:
                out.append((order[0], second))
        return out
