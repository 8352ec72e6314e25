"""`gfpo`: paths that share a long prefix and split at one step, |r_i - r_j| > eps.

The project's own strategy (docs/design.md): the gradient of the pairwise loss lands on the step where
the two paths part. Unrelated to the GFPO paper of the same name (Shrivastava et al. 2025, which
filters groups by length). Pairs are plentiful only with `sampler=branch`.
"""

from __future__ import annotations

import random

from gfpo_bench.config_schema import require
from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy, divergence, informative
from gfpo_bench.types import RewardOutput, Rollouts


@PAIRINGS.register("gfpo")
class GFPOPairing(PairingStrategy):
    """Keeps informative pairs whose shared completion prefix is >= `min_prefix_tokens` tokens and
    >= `min_prefix_frac` of the shorter completion; the `max_pairs_per_group` with the longest shared
    prefix (ties broken at random). Defaults are conf/pairing/gfpo.yaml's."""

    def __init__(
        self,
        name: str = "gfpo",
        eps: float = 1e-6,
        max_pairs_per_group: int | None = 4,
        min_prefix_tokens: int = 4,
        min_prefix_frac: float = 0.5,
        sft_coef: float = 0.0,
    ) -> None:
        super().__init__(name, sft_coef)
        self.eps = require("pairing.eps", eps)  # ranges: config_schema.py PAIRING_RULES
        self.max_pairs_per_group = require("pairing.max_pairs_per_group", max_pairs_per_group)
        self.min_prefix_tokens = require("pairing.min_prefix_tokens", min_prefix_tokens)
        self.min_prefix_frac = require("pairing.min_prefix_frac", min_prefix_frac)

    def shares_long_prefix(self, rollouts: Rollouts, i: int, j: int) -> tuple[bool, int]:
        prompt_len = int(rollouts.prompt_len[i])
        shared = divergence(rollouts, i, j) - prompt_len
        shorter = min(int(rollouts.completion_mask[i].sum()), int(rollouts.completion_mask[j].sum()))
        ok = shared >= self.min_prefix_tokens and shared >= self.min_prefix_frac * max(1, shorter)
        return ok, shared

    def select(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> list[tuple[int, int]]:
        r = rewards.total.tolist()
        out = []
        for idx in rollouts.group_indices():
            scored = []
            for better, worse in informative(idx, r, self.eps):
                ok, shared = self.shares_long_prefix(rollouts, better, worse)
                if ok:
                    scored.append((shared, rng.random(), (better, worse)))
            scored.sort(reverse=True)
            out += [pair for *_, pair in scored[: self.max_pairs_per_group or None]]
        return out
