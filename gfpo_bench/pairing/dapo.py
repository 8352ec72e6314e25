"""`dapo`: every informative pair, dynamic sampling, and an SFT (NLL) term on the better paths.

Takes from DAPO (Yu et al. 2025) dynamic sampling (groups whose accuracy is 0 or 1 are dropped and
the batch refilled with more prompts) and token-level averaging of the NLL term. Accuracy, here and for
the NLL targets, is the observed verdict R_final > 0.5 (`RewardOutput.observed_correct`), noised when
reward.noise > 0, as every method's label is; the paper's rule-based reward is that verdict.
Departs: no clip-higher (there is no PPO ratio to clip) and no overlong shaping.
Pairs are chosen as `random`'s (random_pairs.py), by default all of them.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from gfpo_bench.pairing.base import PAIRINGS, PairingStrategy
from gfpo_bench.pairing.random_pairs import RandomPairing
from gfpo_bench.types import (
    Problem,
    RewardOutput,
    Rollouts,
    concat_rewards,
    concat_rollouts,
    select_rewards,
)


@PAIRINGS.register("dapo")
class DAPOPairing(RandomPairing):
    """Defaults are conf/pairing/dapo.yaml's."""

    dynamic_sampling = True

    def __init__(
        self,
        name: str = "dapo",
        eps: float = 1e-6,
        max_pairs_per_group: int | None = None,
        sft_coef: float = 0.1,
    ) -> None:
        super().__init__(name=name, eps=eps, max_pairs_per_group=max_pairs_per_group, sft_coef=sft_coef)

    def keep_group(self, correct: list[bool]) -> bool:
        return any(correct) and not all(correct)


def dynamic_sampling(
    rollouts: Rollouts,
    rewards: RewardOutput,
    strategy: PairingStrategy,
    want: int,
    pool: list[Problem],
    resample: Callable[[list[Problem]], tuple[Rollouts, RewardOutput]],
    max_rounds: int,
    rng: random.Random,
    pad_id: int,
) -> tuple[Rollouts, RewardOutput, int]:
    """DAPO's dynamic sampling: drop the groups the strategy does not keep (no spread of the observed
    verdict R_final > 0.5, noised like every method's label) and refill from fresh prompts of `pool` (`resample` samples and rewards them), at most
    `max_rounds` extra rounds. -> (rollouts, rewards, groups kept); an empty batch if none was kept."""
    kept_rollouts, kept_rewards = [], []
    for round_ in range(max_rounds + 1):
        correct = rewards.observed_correct.tolist()
        keep = [
            i
            for idx in rollouts.group_indices()
            if strategy.keep_group([correct[j] for j in idx])
            for i in idx
        ]
        if keep:
            kept_rollouts.append(rollouts.select(keep))
            kept_rewards.append(select_rewards(rewards, keep))
        have = sum(len(part.problems) for part in kept_rollouts)
        if have >= want or round_ == max_rounds or not pool:
            break
        rollouts, rewards = resample(rng.sample(pool, min(want - have, len(pool))))
    kept = sum(len(part.problems) for part in kept_rollouts)
    if not kept_rollouts:  # nothing informative: an empty batch, skipped by the module
        return rollouts.select([]), select_rewards(rewards, []), 0
    return concat_rollouts(kept_rollouts, pad_id), concat_rewards(kept_rewards), kept
