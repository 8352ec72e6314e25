"""`gfpo`: paths that share a long prefix and split at one step, |r_i - r_j| > eps.

The project's own strategy (DESIGN.md): the gradient of the pairwise loss lands on the step where
the two paths part. Unrelated to the GFPO paper of the same name (Shrivastava et al. 2025, which
filters groups by length). Pairs are plentiful only with `sampler=branch`.
"""

from __future__ import annotations

import random

from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy, divergence
from gfpo_bench.types import RewardOutput, Rollouts


@PAIRINGS.register("gfpo")
class GFPOPairing(PairingStrategy):
    """Keeps informative pairs whose shared completion prefix is >= `min_prefix_tokens` tokens and
    >= `min_prefix_frac` of the shorter completion; longest shared prefix first."""

    def __init__(
        self,
        eps: float = 1e-6,
        max_pairs_per_group: int | None = 4,
        min_prefix_tokens: int = 4,
        min_prefix_frac: float = 0.5,
        sft_coef: float = 0.0,
    ) -> None:
        super().__init__(eps=eps, max_pairs_per_group=max_pairs_per_group, sft_coef=sft_coef)
        self.min_prefix_tokens, self.min_prefix_frac = min_prefix_tokens, min_prefix_frac

    def shares_long_prefix(self, rollouts: Rollouts, i: int, j: int) -> tuple[bool, int]:
        p = int(rollouts.prompt_len[i])
        shared = divergence(rollouts, i, j) - p
        shorter = min(int(rollouts.completion_mask[i].sum()), int(rollouts.completion_mask[j].sum()))
        ok = shared >= self.min_prefix_tokens and shared >= self.min_prefix_frac * max(1, shorter)
        return ok, shared

    def select(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> list[tuple[int, int]]:
        r = rewards.total.tolist()
        out = []
        for idx in rollouts.group_indices():
            scored = []
            for b, w in self.informative(idx, r):
                ok, shared = self.shares_long_prefix(rollouts, b, w)
                if ok:
                    scored.append((shared, rng.random(), (b, w)))
            scored.sort(reverse=True)
            out += [p for *_, p in scored[: self.max_pairs_per_group or None]]
        return out
