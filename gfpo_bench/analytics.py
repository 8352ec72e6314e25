"""Pair analytics, the same for every strategy: what each strategy's pairs look like.

Per step: number of pairs, pairable groups, reward gap, shared-prefix length and fraction, the step
at which pairs diverge, and how often that divergent step is the worse path's first wrong step
(as judged by the step verifier, `checkers/steps.py`) -- the property GFPO is meant to have.

Distributions are logged as plain scalars so the CSV logger keeps them too: the 10/50/90th
percentiles of the reward gap and of the shared-prefix length, and the fraction of pairs diverging
at each step (`diverge_at/step0` .. `step3plus`, `answer` = after the last step, `nosteps` = the
better path has no reasoning steps). The key set is the same at every step that has pairs.
W&B histograms and a table of sample pairs come from `callbacks/pair_table.py`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gfpo_bench.checkers.steps import first_wrong_step
from gfpo_bench.types import Pairs, RewardOutput, Rollouts


def group_metrics(rollouts: Rollouts, rewards: RewardOutput, prefix: str = "train") -> dict[str, float]:
    """What any method can learn from, before it builds anything: the share of prompt groups whose
    total rewards are not all equal (GRPO: the groups with a non-zero advantage), and the share with
    both a right and a wrong final answer (by the observed R_final, noise included)."""
    total, right = rewards.total.tolist(), (rewards.final > 0.5).tolist()
    groups = rollouts.group_indices()
    spread = sum(len({total[i] for i in idx}) > 1 for idx in groups)
    mixed = sum(len({right[i] for i in idx}) > 1 for idx in groups)
    n = max(1, len(groups))
    return {f"{prefix}/groups_with_spread": spread / n, f"{prefix}/groups_right_and_wrong": mixed / n}


def pair_metrics(
    rollouts: Rollouts, rewards: RewardOutput, pairs: Pairs, prefix: str = "train"
) -> dict[str, float]:
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
    first_wrong = torch.tensor(
        [first_wrong_step(rewards.step_scores[worse]) for worse in pairs.worse.tolist()]
    )  # [M] the worse path's first wrong step, -1: none
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
            f"{prefix}/pairs_same_root": same_root(rollouts, pairs).float().mean().item(),
        }
    )
    out.update(quantiles(gap, f"{prefix}/reward_gap"))
    out.update(quantiles(prefix_tokens, f"{prefix}/prefix_tokens"))
    n_steps = torch.tensor([len(rollouts.step_spans[better]) for better in pairs.better.tolist()])  # [M]
    bins = diverge_bins(pairs.diverge_step, n_steps)
    out.update({f"{prefix}/diverge_at/{name}": frac for name, frac in bins.items()})
    return out


QUANTILES = (0.1, 0.5, 0.9)


def quantiles(x: Tensor, name: str) -> dict[str, float]:
    """x [M] -> {name_p10, name_p50, name_p90}.

    >>> quantiles(torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]), "g")
    {'g_p10': 0.4, 'g_p50': 2.0, 'g_p90': 3.6}
    """
    values = torch.quantile(x.double(), torch.tensor(QUANTILES, dtype=torch.double))
    return {f"{name}_p{round(level * 100)}": value for level, value in zip(QUANTILES, values.tolist())}


def diverge_bins(diverge_step: Tensor, n_steps: Tensor, last: int = 3) -> dict[str, float]:
    """Fraction of pairs per divergence step; diverge_step [M] (-1: no steps), n_steps [M].

    >>> diverge_bins(torch.tensor([0, 1, 1, 3, 5, 2, -1, 4]), torch.tensor([3, 3, 3, 4, 5, 2, 0, 9]))
    {'step0': 0.125, 'step1': 0.25, 'step2': 0.0, 'step3plus': 0.25, 'answer': 0.25, 'nosteps': 0.125}
    """
    m = max(1, diverge_step.numel())
    answer = (diverge_step >= n_steps) & (diverge_step >= 0)  # split after the last step
    inner = ~answer & (diverge_step >= 0)
    out = {f"step{step}": float(((diverge_step == step) & inner).sum()) / m for step in range(last)}
    out[f"step{last}plus"] = float(((diverge_step >= last) & inner).sum()) / m
    out["answer"] = float(answer.sum()) / m
    out["nosteps"] = float((diverge_step < 0).sum()) / m
    return out


def same_root(rollouts: Rollouts, pairs: Pairs) -> Tensor:
    """[M] bool: both paths descend from the same root path (branch sampler); all False otherwise."""
    if rollouts.parent is None:
        return torch.zeros(pairs.m, dtype=torch.bool)
    idx = torch.arange(rollouts.n)
    root = torch.where(rollouts.parent >= 0, rollouts.parent, idx)  # [N] (siblings are one level deep)
    return root[pairs.better] == root[pairs.worse]
