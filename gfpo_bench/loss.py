"""The shared pairwise loss, identical for every pairing strategy (docs/design.md).

    L = -E_(x+, x-)[ log sigma( A(x+) - A(x-) ) ]
    A(x) = beta * sum_{t >= d} ( log pi_theta(x_t | x_<t) - log pi_ref(x_t | x_<t) )

summed over completion tokens from d, the first token where the pair differs. In the sum form the
shared prefix would cancel exactly anyway; the mask makes that explicit and is what the `mean` form
needs (a mean over the whole sequence would not cancel the prefix). The reference term is optional
(DPO, Rafailov et al. 2023, uses it; without it A is the raw log-likelihood from d on).

Optional SFT term (DAPO in this project): token-level mean NLL over the better paths' completions.

Departure (measured, see README): an optional DPO-Positive penalty (Pal et al. 2024, "Smaug"),
    margin = A(x+) - A(x-) - beta * lambda * max(0, -sum_{t>=d} log(pi_theta/pi_ref)(x+_t)),
which stops the better path's likelihood from falling below the reference's. Pairs that differ in
a few tokens (exactly the pairs GFPO seeks) otherwise drive both likelihoods down together
(Razin et al. 2024, likelihood displacement). Measured on one fixed batch of 96 srpo pairs from the
embedded default, 30 steps at lr 1e-4: the plain loss moved the better paths by -6.7 nats, the worse
by -23.9, and greedy accuracy on those very prompts fell from 34% to 3%; with lambda=50 (the paper's
value) the better paths rose by +0.9 nats, the worse fell by 3.0, and accuracy rose to 56%.
`positive_lambda=0` is the plain loss. It is part of the shared loss, so every strategy gets it alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gfpo_bench.config_schema import positive_lambda_needs_reference, require, require_rule
from gfpo_bench.models.logprobs import completion_nll
from gfpo_bench.types import Pairs


@dataclass
class LossOutput:
    loss: Tensor  # [] total loss (pairwise + sft_coef * nll)
    pairwise: Tensor  # [] the pairwise part
    nll: Tensor  # [] the SFT part (0 when unused)
    margin: Tensor  # [M] A(x+) - A(x-), detached
    accuracy: Tensor  # [] fraction of pairs with margin > 0

    def metrics(self) -> dict[str, Tensor]:
        """What a trained step logs about its loss."""
        return {
            "train/loss": self.loss.detach(),
            "train/loss_pairwise": self.pairwise.detach(),
            "train/nll": self.nll.detach(),
            "train/pair_accuracy": self.accuracy,
            "train/margin": self.margin.mean() if self.margin.numel() else self.accuracy * 0,
        }


def divergence_mask(completion_mask: Tensor, index: Tensor, diverge: Tensor) -> Tensor:
    """completion_mask [N, L], index [M], diverge [M] -> [M, L] bool: completion tokens at t >= d."""
    pos = torch.arange(completion_mask.shape[1], device=completion_mask.device)  # [L]
    return completion_mask[index] & (pos[None, :] >= diverge[:, None])


class PairwiseLoss:
    """Built from conf/loss/pairwise.yaml (`_target_`); the defaults here are that file's values.
    `use_reference`: whether the module feeds it a frozen reference's log-probs."""

    def __init__(
        self, beta: float = 0.1, form: str = "sum", use_reference: bool = True, positive_lambda: float = 50.0
    ) -> None:
        require("loss.beta", beta)  # the ranges and the rule across keys: config_schema.py
        require("loss.form", form)
        require("loss.positive_lambda", positive_lambda)
        require_rule(positive_lambda_needs_reference, positive_lambda, use_reference)
        self.beta, self.form, self.positive_lambda = beta, form, positive_lambda
        self.use_reference = use_reference

    def advantages(self, logratio: Tensor, completion_mask: Tensor, index: Tensor, diverge: Tensor) -> Tensor:
        """logratio [N, L], completion_mask [N, L], index [M], diverge [M] -> A [M]."""
        mask = divergence_mask(completion_mask, index, diverge).to(logratio.dtype)  # [M, L]
        total = (logratio[index] * mask).sum(-1)  # [M]
        if self.form == "mean":
            total = total / mask.sum(-1).clamp_min(1.0)
        return self.beta * total

    def __call__(
        self,
        logp: Tensor,  # [N, L] policy token log-probs
        ref_logp: Tensor | None,  # [N, L] reference token log-probs, or None
        completion_mask: Tensor,  # [N, L] bool
        pairs: Pairs,
        sft_coef: float = 0.0,
    ) -> LossOutput:
        logratio = logp - ref_logp if ref_logp is not None else logp  # [N, L]
        zero = logp.sum() * 0.0  # keeps the graph for an all-empty batch
        if pairs.m:
            a_pos = self.advantages(logratio, completion_mask, pairs.better, pairs.diverge)  # [M]
            a_neg = self.advantages(logratio, completion_mask, pairs.worse, pairs.diverge)  # [M]
            margin = a_pos - a_neg
            objective = margin
            if self.positive_lambda > 0 and ref_logp is not None:
                # a_pos / beta is the better path's log-ratio from d; penalise it going negative
                objective = margin - self.positive_lambda * torch.clamp(-a_pos, min=0.0)
            pairwise = -F.logsigmoid(objective).mean()
        else:
            margin, pairwise = logp.new_zeros(0), zero
        nll = zero
        if sft_coef > 0 and pairs.sft_paths.numel():
            nll = completion_nll(logp[pairs.sft_paths], completion_mask[pairs.sft_paths])
        acc = (margin > 0).float().mean() if margin.numel() else logp.new_zeros(())
        return LossOutput(pairwise + sft_coef * nll, pairwise, nll, margin.detach(), acc.detach())
