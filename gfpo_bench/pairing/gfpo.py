"""`gfpo`: paths that share a prefix and split at one step, |r_i - r_j| > eps.

The project's own strategy (docs/design.md): the gradient of the pairwise loss lands on the step where
the two paths part. Unrelated to the GFPO paper of the same name (Shrivastava et al. 2025, which
filters groups by length). Pairs are plentiful only with `sampler=branch`.

Which pairs "share a prefix and split at one step" (`prefix_rule`):
- `lineage` (default). Two paths of one root's lineage (`sampler=branch`: the root and the siblings
  resampled from its cuts, `Rollouts.parent` / `branch_pos`) qualify if they split at or after the
  branch cut, however early the cut: the sampler built them to share everything before it, so the
  split is the resampled step by construction. Any other two paths (`sampler=independent`, or two
  roots' lineages) qualify if they split after the opening of the first reasoning step and share at
  least `min_prefix_tokens` completion tokens. Why: a split inside the first step is a split at one
  step when the step's opening is shared (on arith the operands, "3+4=", copied from the prompt; the
  result differs), but it comes at ~25% of a completion, so a fraction bar can never pass it; a
  split before the first step opens (in the preamble, or paths without steps) is no step at all.
- `fraction` (the rule before; kept to compare): the shared completion prefix must be
  >= `min_prefix_tokens` and >= `min_prefix_frac` of the shorter completion, lineage or not.
On arith nearly every informative pair of well-formed paths passes `lineage`; the cap then keeps the
`max_pairs_per_group` with the longest shared prefix, as under both rules.
"""

from __future__ import annotations

import random

from gfpo_bench.config_schema import require
from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy, divergence, informative
from gfpo_bench.types import RewardOutput, Rollouts


def lineage_cut(rollouts: Rollouts, i: int, j: int) -> int | None:
    """The absolute position up to which paths i and j were built to be equal (the branch cut of the
    one that left the root first; the root's own cut is its end), or None if they are not of one root
    lineage (no parent info, or two roots' lineages). The branch sampler forks depth 1 only."""
    if rollouts.parent is None or rollouts.branch_pos is None:
        return None
    root_i, root_j = (int(rollouts.parent[x]) if int(rollouts.parent[x]) >= 0 else x for x in (i, j))
    if root_i != root_j:
        return None
    cuts = [int(rollouts.branch_pos[x]) for x in (i, j) if int(rollouts.parent[x]) >= 0]
    return min(cuts) if cuts else None  # no cut: i == j == the root


@PAIRINGS.register("gfpo")
class GFPOPairing(PairingStrategy):
    """Keeps informative pairs that pass `prefix_rule` (module docstring); the `max_pairs_per_group`
    with the longest shared prefix (ties broken at random). Defaults are conf/pairing/gfpo.yaml's."""

    def __init__(
        self,
        name: str = "gfpo",
        eps: float = 1e-6,
        max_pairs_per_group: int | None = 4,
        prefix_rule: str = "lineage",
        min_prefix_tokens: int = 4,
        min_prefix_frac: float = 0.5,
        sft_coef: float = 0.0,
    ) -> None:
        super().__init__(name, sft_coef)
        self.eps = require("pairing.eps", eps)  # ranges: config_schema.py PAIRING_RULES
        self.max_pairs_per_group = require("pairing.max_pairs_per_group", max_pairs_per_group)
        self.prefix_rule = require("pairing.prefix_rule", prefix_rule)
        self.min_prefix_tokens = require("pairing.min_prefix_tokens", min_prefix_tokens)
        self.min_prefix_frac = require("pairing.min_prefix_frac", min_prefix_frac)  # `fraction` only
        self.rule = {"lineage": self.by_lineage, "fraction": self.by_fraction}[prefix_rule]

    def by_fraction(self, rollouts: Rollouts, i: int, j: int, diverge: int) -> bool:
        shared = diverge - int(rollouts.prompt_len[i])
        shorter = min(int(rollouts.completion_mask[i].sum()), int(rollouts.completion_mask[j].sum()))
        return shared >= self.min_prefix_tokens and shared >= self.min_prefix_frac * max(1, shorter)

    def by_lineage(self, rollouts: Rollouts, i: int, j: int, diverge: int) -> bool:
        cut = lineage_cut(rollouts, i, j)
        if cut is not None and diverge >= cut:
            return True  # siblings of one root: split at or after their branch cut
        spans = rollouts.step_spans[i]  # i and j agree up to `diverge`, so their first step starts alike
        opened = bool(spans) and diverge > spans[0][0]  # the first step's opening is shared
        return opened and diverge - int(rollouts.prompt_len[i]) >= self.min_prefix_tokens

    def shares_long_prefix(self, rollouts: Rollouts, i: int, j: int) -> tuple[bool, int]:
        """(does the pair pass `prefix_rule`, its shared completion tokens)."""
        diverge = divergence(rollouts, i, j)
        return self.rule(rollouts, i, j, diverge), diverge - int(rollouts.prompt_len[i])

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
