"""Pair analytics, the same for every strategy: what each strategy's pairs look like.

Per step: number of pairs, pairable groups, reward gap, shared-prefix length and fraction, the step
at which pairs diverge, and how often that divergent step is the worse path's first wrong step
(as judged by the step verifier) -- the property GFPO is meant to have.
"""

from __future__ import annotations

import torch

from gfpo_bench.types import Pairs, RewardOutput, Rollouts


def first_wrong_step(scores: list[int]) -> int:
    """Index of the first step the verifier marks wrong (-1 if none).

    >>> first_wrong_step([1, 1, -1, -1]), first_wrong_step([1, 0])
    (2, -1)
    """
    return next((t for t, s in enumerate(scores) if s < 0), -1)


def pair_metrics(rollouts: Rollouts, rewards: RewardOutput, pairs: Pairs, prefix: str = "train") -> dict[str, float]:
    n_groups = max(1, len(rollouts.problems))
    out = {
        f"{prefix}/pairs": float(pairs.m),
        f"{prefix}/pairable_groups": 0.0,
        f"{prefix}/pairable_group_rate": 0.0,
    }
    if pairs.m == 0:
        return out
    groups = rollouts.group[pairs.better]
    n_pairable = int(torch.unique(groups).numel())
    gap = rewards.total[pairs.better] - rewards.total[pairs.worse]  # [M]
    prefix_tokens = (pairs.diverge - rollouts.prompt_len[pairs.better]).clamp_min(0).float()  # [M]
    first_wrong = torch.tensor([first_wrong_step(rewards.step_scores[w]) for w in pairs.worse.tolist()])
    has_wrong = first_wrong >= 0
    hit = (pairs.diverge_step == first_wrong) & has_wrong
    out.update(
        {
            f"{prefix}/pairable_groups": float(n_pairable),
            f"{prefix}/pairable_group_rate": n_pairable / n_groups,
            f"{prefix}/reward_gap": gap.mean().item(),
            f"{prefix}/prefix_frac": pairs.prefix_frac.mean().item(),
            f"{prefix}/prefix_tokens": prefix_tokens.mean().item(),
            f"{prefix}/diverge_step": pairs.diverge_step.float().mean().item(),
            f"{prefix}/diverge_is_first_wrong": hit.float().sum().item() / max(1, int(has_wrong.sum())),
        }
    )
    return out
