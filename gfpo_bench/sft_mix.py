"""SFT + RL mixed: a supervised loss on reference solutions, added to every RL step's loss.

    L = L_method + coef * NLL(reference solution | prompt)

The NLL is the token-level mean over the reference solutions (`Task.reference_solution`) of the
step's own training prompts (before any DAPO refill), so every compared method sees the same
supervised data, in the same order, for the same seed. It is added whether or not the method found
a signal in the step: a step with no pairs still takes the supervised gradient.

This is the "SFT + RL mixed" situation of Table 2 (conf/experiment/table2_sft_mixed.yaml): supervised
data stays in play during RL, as in InstructGPT's PPO-ptx (Ouyang et al., 2022, which mixes
pretraining gradients into PPO) and the SFT-regularised RL recipes that followed. It differs from
DAPO's `sft_coef` (pairing/dapo.py), an NLL on the model's own better *sampled* paths, and from the
SFT warm start (models/sft.py), which is trained before RL, not with it. On the embedded arith task
the references are the clean worked solutions (no teacher slips), not the fallible teacher's SFT data.
`coef: 0` (the default) switches the term off and the step is the method's alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from gfpo_bench.config_schema import require
from gfpo_bench.models.logprobs import completion_nll, token_logprobs
from gfpo_bench.models.prompting import encode_prompt
from gfpo_bench.models.sft import encode_examples


@dataclass
class MixedOutput:
    """The method's loss output (None when the step had no signal) plus the supervised term."""

    inner: object | None  # LossOutput or GRPOOutput
    nll: Tensor  # [] NLL of the reference solutions
    coef: float

    @property
    def loss(self) -> Tensor:
        own = self.inner.loss if self.inner is not None else 0.0
        return own + self.coef * self.nll

    @property
    def margin(self) -> Tensor | None:  # the pair table reads the method's margins
        return getattr(self.inner, "margin", None)

    def metrics(self) -> dict[str, Tensor]:
        out = dict(self.inner.metrics()) if self.inner is not None else {}
        out["train/loss"] = self.loss.detach()
        out["train/sft_mix_nll"] = self.nll.detach()
        return out


class SupervisedMix:
    """Built from the `sft_mix` node of conf/config.yaml; the module calls `mix` once per step."""

    def __init__(self, coef: float = 0.0) -> None:
        self.coef = require("module.sft_mix.coef", coef)

    @property
    def active(self) -> bool:
        return self.coef > 0

    def mix(self, module, problems, out):
        """`out` (the method's loss output, or None) with the supervised term added; as is when off."""
        if not self.active:
            return out
        return MixedOutput(out, self.nll(module, problems), self.coef)

    def nll(self, module, problems) -> Tensor:
        """Token-level mean NLL of the problems' reference solutions under the module's policy."""
        tok, formatter, task = module.tok, module.sampler.formatter, module.task
        prompts = [encode_prompt(tok, formatter, task, p) for p in problems]
        tokens, attn, comp = encode_examples(tok, prompts, [task.reference_solution(p) for p in problems])
        device = module.device
        logp = token_logprobs(module.model, tokens.to(device), attn.to(device), module.logits_budget)  # [B,L]
        return completion_nll(logp, comp.to(device))
