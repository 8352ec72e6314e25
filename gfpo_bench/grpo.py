"""GRPO: the group-relative policy gradient, the baseline every pairwise strategy is read against.

No pairs. Each path's advantage is its total reward relative to its own prompt's group
(Shao et al. 2024, DeepSeekMath):

    A_i = (r_i - mean_g(r)) / (std_g(r) + 1e-4)      std: unbiased (Bessel), as TRL's GRPOTrainer
    ratio_i,t = pi_theta(o_i,t | .) / pi_old(o_i,t | .)  (= 1 with one update per batch: on-policy)
    l_i,t = -min(ratio * A_i, clip(ratio, 1 - eps_low, 1 + eps_high) * A_i) + kl_coef * KL_i,t
    KL_i,t = exp(ref - logp) - (ref - logp) - 1         the k3 estimator of the GRPO paper (>= 0)

aggregated over completion tokens by `aggregation`:
- `sequence`: mean over paths of each path's token mean, 1/|o_i| (the GRPO paper; TRL loss_type="grpo");
- `token`: one mean over every completion token of the batch (DAPO, Yu et al. 2025; TRL "dapo" and
  "bnpo", equal on one process);
- `constant`: sum over tokens / (paths x max_new_tokens), with `scale_std=false` this is Dr. GRPO
  (Liu et al. 2025): no length and no std normalisation (TRL "dr_grpo").

Departures, all stated: the reward is the framework's decomposed reward (one number per path, the
same one every pairwise strategy sees); a batch whose advantages are all zero (no group has a reward
spread) and that has no KL term skips the optimizer step, as a pairwise batch with no pairs does
(TRL steps with a zero gradient, which still moves AdamW's weights by its momentum). On the branch
sampler a group's paths share prefixes: they are siblings, not the independent samples the
advantage baseline assumes (the method then still runs; the run's config says which sampler it had).
The KL is the paper's plain k3; TRL 1.16 by default multiplies it by the ratio
(`use_bias_correction_kl=True`): the same value on-policy, another gradient. One update per sampled
batch (on-policy): the clipped ratio is in the loss (`old_logp`), `updates_per_batch > 1` is not
built. scripts/check_grpo_vs_trl.py checks loss and gradients against TRL's GRPOTrainer.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import torch
from torch import Tensor

from gfpo_bench.config_schema import require
from gfpo_bench.errors import ConfigError
from gfpo_bench.pairing.base import PAIRINGS
from gfpo_bench.types import RewardOutput, Rollouts

STD_EPS = 1e-4  # TRL's and the paper's code's
log = logging.getLogger(__name__)


def group_advantages(total: Tensor, group: Tensor, scale_std: bool = True) -> Tensor:
    """total [N] rewards, group [N] group ids -> [N] advantages (r - group mean) / (group std + 1e-4).

    >>> group_advantages(torch.tensor([1.0, 0.0, 0.5, 0.5]), torch.tensor([0, 0, 1, 1]))
    tensor([ 0.7070, -0.7070,  0.0000,  0.0000])
    """
    adv = torch.zeros_like(total)
    for g in torch.unique(group):
        idx = (group == g).nonzero().flatten()
        r = total[idx]
        if (r == r[0]).all():  # no spread: exactly 0 (a float32 mean of equal values can be 1 ulp off,
            continue  # which the ~0 std would blow up to ~1e-3)
        a = r - r.mean()
        if scale_std:
            std = r.std(unbiased=True) if r.numel() > 1 else r.new_zeros(())
            a = a / (std + STD_EPS)
        adv[idx] = a
    return adv


@dataclass
class GroupAdvantages:
    """GRPO's training signal: every path of the batch with its advantage."""

    index: Tensor  # [P] long, path indices into the rollouts
    advantages: Tensor  # [P] float
    kl: bool = False  # the loss has a KL term (a gradient even where every advantage is 0)

    m = 0  # pairs: none (pair statistics, the DDP weights of pair metrics)

    @property
    def has_signal(self) -> bool:
        return self.kl or bool((self.advantages != 0).any())

    def paths(self) -> Tensor:
        """[P] the paths the loss reads: all of them (a zero advantage still counts in the normaliser)."""
        return self.index

    def local(self, remap: Tensor, device) -> GroupAdvantages:
        """The same signal with path indices mapped through `remap` [N] (to rows of a scored subset)."""
        return GroupAdvantages(remap[self.index].to(device), self.advantages.to(device), self.kl)


@dataclass
class GRPOOutput:
    loss: Tensor  # [] the aggregated loss
    policy: Tensor  # [] the policy-gradient part
    kl: Tensor  # [] mean per-token KL to the reference (0 without one)
    clip_frac: Tensor  # [] share of completion tokens whose ratio was clipped

    def metrics(self) -> dict[str, Tensor]:
        return {
            "train/loss": self.loss.detach(),
            "train/loss_policy": self.policy.detach(),
            "train/kl": self.kl.detach(),
            "train/clip_frac": self.clip_frac.detach(),
        }


class GRPOLoss:
    """The clipped policy-gradient loss of GRPO on precomputed token log-probs."""

    def __init__(
        self,
        aggregation: str = "token",
        kl_coef: float = 0.0,
        clip_eps_low: float = 0.2,
        clip_eps_high: float = 0.2,
        max_new_tokens: int = 48,
    ) -> None:
        require("pairing.aggregation", aggregation)
        require("pairing.kl_coef", kl_coef)
        require("pairing.clip_eps_low", clip_eps_low)
        require("pairing.clip_eps_high", clip_eps_high)
        require("pairing.max_new_tokens", max_new_tokens)
        self.aggregation, self.kl_coef = aggregation, kl_coef
        self.clip = (clip_eps_low, clip_eps_high)
        self.max_new_tokens = max_new_tokens

    def __call__(
        self,
        logp: Tensor,  # [P, L] policy token log-probs (with grad)
        ref_logp: Tensor | None,  # [P, L] reference token log-probs, or None (kl_coef = 0)
        completion_mask: Tensor,  # [P, L] bool
        advantages: Tensor,  # [P]
        old_logp: Tensor | None = None,  # [P, L] the sampling policy's; None: on-policy (logp.detach())
    ) -> GRPOOutput:
        mask = completion_mask.to(logp.dtype)  # [P, L]
        old = logp.detach() if old_logp is None else old_logp
        ratio = torch.exp(logp - old)  # [P, L]
        clipped = torch.clamp(ratio, 1 - self.clip[0], 1 + self.clip[1])
        adv = advantages[:, None]  # [P, 1]
        per_token = -torch.min(ratio * adv, clipped * adv)  # [P, L]
        policy_tokens = per_token
        kl = logp.new_zeros(())
        if self.kl_coef > 0:
            if ref_logp is None:
                raise ValueError("pairing.kl_coef > 0 needs the reference's log-probs")
            delta = ref_logp - logp
            per_kl = torch.exp(delta) - delta - 1  # [P, L] k3
            per_token = per_token + self.kl_coef * per_kl
            kl = (per_kl * mask).sum() / mask.sum().clamp_min(1.0)
        loss = self.aggregate(per_token, mask)
        policy = self.aggregate(policy_tokens, mask)
        is_clipped = ((ratio < 1 - self.clip[0]) & (adv < 0)) | ((ratio > 1 + self.clip[1]) & (adv > 0))
        clip_frac = (is_clipped.to(mask.dtype) * mask).sum() / mask.sum().clamp_min(1.0)
        return GRPOOutput(loss, policy, kl.detach(), clip_frac.detach())

    def aggregate(self, per_token: Tensor, mask: Tensor) -> Tensor:
        """per_token [P, L], mask [P, L] -> [] by `aggregation` (see the module docstring)."""
        total = per_token * mask
        if self.aggregation == "sequence":
            return (total.sum(-1) / mask.sum(-1).clamp_min(1.0)).mean()
        if self.aggregation == "token":
            return total.sum() / mask.sum().clamp_min(1.0)
        return total.sum() / (per_token.shape[0] * self.max_new_tokens)


@PAIRINGS.register("grpo")
class GRPO:
    """`pairing=grpo`: a method of the `pairing` group that makes no pairs. Like a pairing strategy it
    turns one batch of rollouts into a training signal (`__call__`), and it brings its own loss
    (`objective`), which the module uses instead of the shared pairwise loss. Built from
    conf/pairing/grpo.yaml; the defaults here are that file's."""

    dynamic_sampling = False
    sft_coef = 0.0

    def __init__(
        self,
        name: str = "grpo",
        scale_std: bool = True,
        aggregation: str = "token",
        kl_coef: float = 0.0,
        clip_eps_low: float = 0.2,
        clip_eps_high: float = 0.2,
        max_new_tokens: int = 48,
    ) -> None:
        if name != "grpo":
            raise ConfigError(
                f"pairing name {name!r} is the label of {PAIRINGS.get(name).__name__}, not of GRPO"
            )
        require("pairing.scale_std", scale_std)
        self.name, self.scale_std = name, scale_std
        self.warned_branch = False
        self.objective = GRPOLoss(aggregation, kl_coef, clip_eps_low, clip_eps_high, max_new_tokens)

    def needs_reference(self, pairwise_loss) -> bool:
        return self.objective.kl_coef > 0  # kl_coef = 0: no reference pass at all

    def keep_group(self, correct: list[bool]) -> bool:
        return True

    def __call__(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> GroupAdvantages:
        if rollouts.parent is not None and not self.warned_branch:  # sampler=branch
            log.warning(
                "grpo on branched rollouts: a group's paths share prefixes (siblings of common roots), not "
                "the independent samples its advantage baseline assumes"
            )
            self.warned_branch = True
        adv = group_advantages(rewards.total.float(), rollouts.group, self.scale_std)  # [N]
        return GroupAdvantages(torch.arange(rollouts.n), adv, kl=self.objective.kl_coef > 0)

    @staticmethod
    def signal_metrics(rollouts: Rollouts, rewards: RewardOutput, signal: GroupAdvantages) -> dict:
        """No pair statistics; the mean |advantage| (the groups' reward spread is logged for every method)."""
        adv = signal.advantages
        return {"train/pairs": 0.0, "train/advantage_abs": float(adv.abs().mean()) if adv.numel() else 0.0}
