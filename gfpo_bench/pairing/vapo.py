"""`vapo`: highest-reward vs lowest-reward path of each group (high score vs low score).

Borrows from VAPO (Yue et al. 2025) only the use of the full reward range. Departs: no value model
and no PPO; the two extremes are compared with the shared pairwise loss.
"""

from __future__ import annotations

import random

from gfpo_bench.config_schema import require
from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy
from gfpo_bench.types import RewardOutput, Rollouts


@PAIRINGS.register("vapo")
class VAPOPairing(PairingStrategy):
    """One pair per group at most, so no `max_pairs_per_group`. Defaults are conf/pairing/vapo.yaml's."""

    def __init__(self, name: str = "vapo", eps: float = 1e-6, sft_coef: float = 0.0) -> None:
        super().__init__(name, sft_coef)
        self.eps = require("pairing.eps", eps)  # its range: config_schema.py PAIRING_RULES

    def select(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> list[tuple[int, int]]:
        r = rewards.total.tolist()
        out = []
        for idx in rollouts.group_indices():
            order = sorted(idx, key=lambda i: (r[i], rng.random()))  # random tie-break
            lo, hi = order[0], order[-1]
            if r[hi] - r[lo] > self.eps:
                out.append((hi, lo))
        return out
