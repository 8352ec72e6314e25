# python scripts/check_grpo_vs_trl.py   (needs `pip install trl accelerate`, which gfpo-bench does not depend on)
"""Parity of gfpo-bench's GRPO (gfpo_bench/grpo.py) with TRL's GRPOTrainer on one fixed batch.

The batch: the shipped warm start (the default config's model) samples 4 completions for each of 4
arith training prompts of equal token length (TRL left-pads prompts; a padded prompt would shift HF
Qwen2's position ids and change the log-probs for a reason that has nothing to do with the loss), and
gfpo-bench's `Reward` scores them: three groups with a reward spread, one without. Weights:
- reference: the shipped weights (TRL loads its own copy from the same folder; checked equal);
- policy: the shipped weights plus a small random perturbation, so the KL term is not zero;
- off-policy cases: that policy "sampled" the batch (TRL's `num_iterations=2` path computes
  `old_per_token_logps` from it) and the loss is taken after one large SGD step on the batch, so
  ratios leave [1 - eps, 1 + eps] and the clip acts.
TRL runs its real code path: `_generate_and_score_completions` (with a `rollout_func` that returns the
fixed completions; TRL's own reward call, advantages, reference and old log-probs, masks and
`num_items_in_batch`), then `compute_loss` and `backward`. It runs twice: with its own log-probs (its
fused, chunked LM head with a hand-written backward), and with gfpo-bench's `token_logprobs` swapped in,
which leaves the loss math as the only difference. gfpo-bench runs what `PairwiseRLModule.signal_loss`
runs for GRPO: `GRPO(...)` advantages, `token_logprobs` on the right-padded prompt+completion,
`GRPOLoss`. Exit status 1 if a parity case exceeds the tolerance.

TRL's default `use_bias_correction_kl=True` multiplies the KL term by the ratio pi/pi_old (DeepSeek-V3.2);
gfpo-bench's KL is the GRPO paper's k3. The parity cases set it False; the "ratio-KL" rows keep TRL's
default and show the difference (reported, not gated).
"""

from __future__ import annotations

import copy
import json
import os
import random
import sys
import tempfile
import warnings
from dataclasses import dataclass

import torch

AGGREGATION = {"grpo": "sequence", "dapo": "token", "bnpo": "token", "dr_grpo": "constant"}
# Tolerances (float32: eps = 1.2e-7). Both sides compute the same sums in a different order, so they
# agree to rounding, not bit for bit. End to end, TRL's LM head differs from a full log_softmax by
# up to 1 ulp of the logits (|logit| <= 19 here: ~1e-6 in a log-prob); that rounding, carried back
# through 4 layers, reaches ~2e-5 of the largest entry of the smallest gradients (layer 0's q/k).
# A formula slip moves the whole gradient by far more: a biased std 0.16, Dr. GRPO's normaliser with 49
# for 48 tokens 0.02, no clip 0.10, TRL's ratio-weighted KL 0.025 (relative, measured on this batch).
LOSS_ATOL = 1e-6  # |loss| <= 0.15
ADV_ATOL = 1e-6  # advantages are O(1): ~10 ulps
GRAD_RTOL = 1e-5  # ||g_ours - g_trl|| / ||g_trl|| over all parameters
TENSOR_RTOL = 1e-4  # per tensor: max |diff| / max |g_trl|
SAME_LOGP_RTOL = 1e-6  # both with gfpo-bench's log-probs: only the loss math (and its sum order) differs
SIGMA_POLICY = 0.2  # policy = shipped + this x RMS(parameter) x N(0, 1): the KL term is ~5% of the gradient
STEP_LR = 0.3  # off-policy cases: one SGD step after sampling, large enough that ratios get clipped


@dataclass(frozen=True)
class Case:
    loss_type: str  # TRL's loss_type
    beta: float  # TRL's beta = gfpo-bench's pairing.kl_coef
    off_policy: bool = False  # old_logp from the sampling policy, not logp.detach()
    ratio_kl: bool = False  # TRL's use_bias_correction_kl (its default); gfpo-bench has no such term

    @property
    def name(self) -> str:
        flags = [" off-policy"] * self.off_policy + [" ratio-KL"] * self.ratio_kl
        return f"{self.loss_type} beta={self.beta}" + "".join(flags)


CASES = [Case(t, b) for t in AGGREGATION for b in (0.0, 0.04)] + [Case(t, 0.04, True) for t in AGGREGATION]
TRL_DEFAULT_KL = [Case("dapo", 0.04, ratio_kl=True), Case("dapo", 0.04, True, ratio_kl=True)]


@dataclass
class Batch:
    """The fixed batch and everything both sides need to score it."""

    cfg: object  # the composed default config (pairing=grpo)
    task: object
    tok: object
    formatter: object
    reference: torch.nn.Module  # the shipped weights
    rollouts: object  # Rollouts [N = prompts x k]
    rewards: object  # RewardOutput
    reward: object  # the Reward callable


def load_batch(prompts: int = 4, k: int = 4, seed: int = 0, candidates: int = 12) -> Batch:
    """The default config's model and k sampled paths for each of `prompts` equal-length training
    prompts: groups with a reward spread, and one without (its advantages are 0: TRL's 0 / (0 + 1e-4))."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from gfpo_bench.building import build
    from gfpo_bench.models.factory import build_model, max_context

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="gfpo_bench.conf", version_base="1.3"):
        cfg = compose("config", overrides=["pairing=grpo", f"sampler.k={k}"])
    task = build(cfg.task)
    key = json.dumps(OmegaConf.to_container(cfg.task, resolve=True), sort_keys=True)
    model, tok, formatter = build_model(cfg.model, task, key)  # the shipped warm start
    model.eval()
    sampler = build(cfg.sampler)(tokenizer=tok, formatter=formatter, max_context=max_context(model))
    torch.manual_seed(seed)
    rollouts = sampler.sample(model, task, equal_length_problems(sampler, task, candidates))
    reward = build(cfg.reward)
    total = reward(task, rollouts).total.tolist()
    groups = rollouts.group_indices()
    spread = [g for g, idx in enumerate(groups) if len({total[i] for i in idx}) > 1]
    flat = [g for g in range(len(groups)) if g not in spread]
    chosen = sorted((spread[: prompts - 1] + flat[:1] + spread[prompts - 1 :])[:prompts])
    rollouts = rollouts.select([i for g in chosen for i in groups[g]])
    return Batch(cfg, task, tok, formatter, model, rollouts, reward(task, rollouts), reward)


def equal_length_problems(sampler, task, n: int) -> list:
    """The first n training problems (in split order) whose prompts share one token length."""
    by_length: dict[int, list] = {}
    for p in task.problems("train"):
        same = by_length.setdefault(len(sampler.encode_prompts(task, [p])[0]), [])
        same.append(p)
        if len(same) == n:
            return same
    raise ValueError(f"no {n} training prompts of equal length")


def perturbed(model: torch.nn.Module, sigma: float, seed: int) -> torch.nn.Module:
    """A copy with every parameter moved by sigma x its RMS x standard normal noise."""
    out = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(sigma * p.pow(2).mean().sqrt() * torch.randn(p.shape, generator=gen))
    return out


def sgd_step(batch: Batch, model: torch.nn.Module, lr: float) -> torch.nn.Module:
    """A copy after one SGD step on the batch's GRPO loss: the ratios of positive-advantage tokens
    rise and those of negative-advantage tokens fall, towards the clip."""
    from gfpo_bench.grpo import GRPO, GRPOLoss
    from gfpo_bench.models.logprobs import token_logprobs

    out, r = copy.deepcopy(model), batch.rollouts
    advantages = GRPO()(r, batch.rewards, random.Random(0)).advantages
    logp = token_logprobs(out, r.tokens, r.attention_mask)
    GRPOLoss("token")(logp, None, r.completion_mask, advantages).loss.backward()
    with torch.no_grad():
        for p in out.parameters():
            p.sub_(lr * p.grad)
            p.grad = None
    return out


def models_for(batch: Batch, case: Case) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(the policy that sampled the batch, the policy the loss is taken at)."""
    sampling = perturbed(batch.reference, SIGMA_POLICY, seed=1)
    return sampling, sgd_step(batch, sampling, STEP_LR) if case.off_policy else sampling


@dataclass
class Side:
    """One implementation's numbers on one case."""

    rewards: torch.Tensor  # [N]
    advantages: torch.Tensor  # [N]
    logp: torch.Tensor  # [N, C] completion-token log-probs (0 on padding)
    loss: float
    grads: dict[str, torch.Tensor]  # parameter name -> gradient
    clip_frac: float


def ours(batch: Batch, case: Case, sampling, policy) -> Side:
    """What PairwiseRLModule.signal_loss does with pairing=grpo."""
    from gfpo_bench.grpo import GRPO
    from gfpo_bench.models.logprobs import token_logprobs

    policy, r = copy.deepcopy(policy), batch.rollouts
    method = GRPO(
        scale_std=case.loss_type != "dr_grpo",
        aggregation=AGGREGATION[case.loss_type],
        kl_coef=case.beta,
        max_new_tokens=int(batch.cfg.sampler.max_new_tokens),
    )
    signal = method(r, batch.rewards, random.Random(0))
    width = int(r.attention_mask.sum(-1).max())
    tokens, attn, comp = r.tokens[:, :width], r.attention_mask[:, :width], r.completion_mask[:, :width]
    logp = token_logprobs(policy.train(), tokens, attn)  # [N, W]
    with torch.no_grad():
        ref = token_logprobs(batch.reference, tokens, attn) if method.needs_reference(None) else None
        old = token_logprobs(sampling, tokens, attn) if case.off_policy else None
    out = method.objective(logp, ref, comp, signal.advantages, old)
    out.loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in policy.named_parameters()}
    completion = (logp * comp)[:, int(r.prompt_len[0]) :].detach()  # [N, C] as TRL's
    return Side(
        batch.rewards.total.float(),
        signal.advantages,
        completion,
        float(out.loss),
        grads,
        float(out.clip_frac),
    )


def gfpo_logps(model, input_ids, attention_mask, logits_to_keep, **_):
    """A stand-in for TRL's `_get_per_token_logps_and_entropies` that uses gfpo-bench's log-probs."""
    from gfpo_bench.models.logprobs import token_logprobs

    logp = token_logprobs(model, input_ids, attention_mask.bool())[:, -logits_to_keep:]
    return logp, torch.zeros_like(logp), None


def trl(batch: Batch, case: Case, sampling, policy) -> tuple[Side, Side]:
    """TRL's GRPOTrainer on the same batch: with its own log-probs, then with gfpo-bench's."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from gfpo_bench.sampling.base import rollouts_from_texts

    r, tok, k = batch.rollouts, batch.tok, int(batch.cfg.sampler.k)
    problems = {p.uid: p for p in r.problems}
    prompt_text = [batch.formatter(tok, batch.task.prompt(p)) for p in r.problems]
    paths: dict[str, list] = {}  # prompt text -> its (prompt ids, completion ids), in sampling order
    for i, g in enumerate(r.group.tolist()):
        ids, cut = r.tokens[i][r.attention_mask[i]].tolist(), int(r.prompt_len[i])
        paths.setdefault(prompt_text[g], []).append((ids[:cut], ids[cut:]))

    def rollout_func(prompts: list[str], trainer) -> dict:
        unused = {text: iter(pairs) for text, pairs in paths.items()}
        out = [next(unused[text]) for text in prompts]
        return {"prompt_ids": [p for p, _ in out], "completion_ids": [c for _, c in out], "logprobs": None}

    scored: list[float] = []

    def reward_fn(prompts, completions, uid, **_) -> list[float]:  # as scripts/_trl_grpo_step.py does
        rollouts = rollouts_from_texts(
            tok, batch.formatter, batch.task, [problems[u] for u in uid], [[c] for c in completions]
        )
        scored[:] = batch.reward(batch.task, rollouts).total.tolist()
        return list(scored)

    rows = [{"prompt": prompt_text[g], "uid": p.uid} for g, p in enumerate(r.problems)]
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=r.n,  # the whole batch in one micro-batch
            num_generations=k,
            max_completion_length=int(batch.cfg.sampler.max_new_tokens),
            temperature=1.0,  # TRL divides the loss's logits by it; gfpo-bench's loss does not
            beta=case.beta,
            loss_type=case.loss_type,
            scale_rewards="none" if case.loss_type == "dr_grpo" else "group",
            epsilon=0.2,
            epsilon_high=0.2,
            num_iterations=2 if case.off_policy else 1,  # 2: TRL computes old_per_token_logps
            use_bias_correction_kl=case.ratio_kl,
            report_to=[],
            use_cpu=True,
            bf16=False,
            save_strategy="no",
            seed=0,
        )
        trainer = GRPOTrainer(
            model=copy.deepcopy(sampling),
            reward_funcs=reward_fn,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            rollout_func=rollout_func,
        )
        if trainer.ref_model is not None:  # loaded from the asset folder: must be the shipped weights
            shipped = batch.reference.state_dict()
            if any(not torch.equal(t, shipped[n]) for n, t in trainer.ref_model.state_dict().items()):
                raise AssertionError("TRL's reference model is not the shipped weights")
        trainer.model.train()
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop: one micro-batch per step
        batch_rows = [row for row in rows for _ in range(k)]  # as TRL's RepeatSampler orders them
        native = trl_pass(trainer, batch, batch_rows, sampling, policy, scored)
        trainer._get_per_token_logps_and_entropies = gfpo_logps
        swapped = trl_pass(trainer, batch, batch_rows, sampling, policy, scored)
    return native, swapped


def trl_pass(trainer, batch: Batch, rows: list[dict], sampling, policy, scored: list[float]) -> Side:
    """Score the batch with the sampling weights, take TRL's loss and gradient at the policy's."""
    trainer.model.load_state_dict(sampling.state_dict())
    inputs = trainer._generate_and_score_completions(rows)
    check_same_batch(batch, inputs)
    trainer.model.load_state_dict(policy.state_dict())  # off-policy: the update after sampling
    trainer.model.zero_grad(set_to_none=True)
    loss = trainer.compute_loss(trainer.model, inputs)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()}
    clip_frac = trainer._metrics["train"]["clip_ratio/region_mean"][-1]
    with torch.no_grad():
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        attn = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
        logp = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, attn, inputs["completion_ids"].size(1)
        )[0]
    logp = logp * inputs["completion_mask"]
    return Side(torch.tensor(scored), inputs["advantages"], logp, float(loss), grads, clip_frac)


def check_same_batch(batch: Batch, inputs: dict) -> None:
    """TRL's padded prompt+completion tensor is gfpo-bench's right-padded one (else the comparison is moot)."""
    r = batch.rollouts
    width = int(r.attention_mask.sum(-1).max())
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1).bool()
    if not (
        torch.equal(mask, r.attention_mask[:, :width]) and torch.equal(ids[mask], r.tokens[:, :width][mask])
    ):
        raise AssertionError("TRL's batch is not gfpo-bench's (prompt padding or completion order)")


def grad_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[float, float, float]:
    """(max |a - b|, ||a - b|| / ||b|| over all parameters, max over tensors of max |a - b| / max |b|)."""
    diff = {n: a[n] - g for n, g in b.items()}
    norm = torch.cat([g.flatten() for g in b.values()]).norm()
    return (
        max(float(d.abs().max()) for d in diff.values()),
        float(torch.cat([d.flatten() for d in diff.values()]).norm() / norm),
        max(float(diff[n].abs().max() / g.abs().max().clamp_min(1e-30)) for n, g in b.items()),
    )


def compare(batch: Batch, case: Case) -> dict:
    """One row of the table: the largest differences between the two sides on `case`."""
    sampling, policy = models_for(batch, case)
    mine, (theirs, swapped) = ours(batch, case, sampling, policy), trl(batch, case, sampling, policy)
    grad_abs, grad_rel, tensor_rel = grad_diff(mine.grads, theirs.grads)
    return {
        "case": case.name,
        "loss": theirs.loss,
        "d_loss": abs(mine.loss - theirs.loss),
        "d_grad_abs": grad_abs,
        "d_grad_rel": grad_rel,
        "d_tensor_rel": tensor_rel,
        "same_logp_d_loss": abs(mine.loss - swapped.loss),
        "same_logp_d_grad_rel": grad_diff(mine.grads, swapped.grads)[1],
        "d_adv": float((mine.advantages - theirs.advantages).abs().max()),
        "d_logp": float((mine.logp - theirs.logp).abs().max()),
        "d_reward": float((mine.rewards - theirs.rewards).abs().max()),
        "clip_ours": mine.clip_frac,
        "clip_trl": theirs.clip_frac,
    }


def within_tolerance(row: dict) -> bool:
    return (
        row["d_loss"] <= LOSS_ATOL
        and row["d_grad_rel"] <= GRAD_RTOL
        and row["d_tensor_rel"] <= TENSOR_RTOL
        and row["same_logp_d_grad_rel"] <= SAME_LOGP_RTOL
        and row["d_adv"] <= ADV_ATOL
        and row["d_reward"] == 0.0
        and row["clip_ours"] == row["clip_trl"]
    )


COLUMNS = ["case", "loss", "d_loss", "d_grad_abs", "d_grad_rel", "d_tensor_rel", "same_logp_d_loss",
           "same_logp_d_grad_rel", "d_adv", "d_logp", "d_reward", "clip_ours", "clip_trl"]  # fmt: skip


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " | ok |", "|" + "---|" * (len(COLUMNS) + 1)]
    for row in rows:
        cells = [row["case"]] + [f"{row[c]:.3g}" for c in COLUMNS[1:]]
        lines.append("| " + " | ".join(cells) + f" | {'yes' if within_tolerance(row) else 'NO'} |")
    return "\n".join(lines)


def describe(batch: Batch) -> str:
    r = batch.rollouts
    total = batch.rewards.total.tolist()
    spread = sum(len({total[i] for i in idx}) > 1 for idx in r.group_indices())
    lengths = r.completion_mask.sum(-1).tolist()
    return (
        f"batch: {len(r.problems)} prompts of {int(r.prompt_len[0])} tokens x {r.n // len(r.problems)} "
        f"completions of {min(lengths)}-{max(lengths)} tokens, {spread}/{len(r.problems)} groups with a "
        f"reward spread; rewards {[round(t, 3) for t in total]}"
    )


def quiet() -> None:
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is marked experimental
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def main() -> int:
    quiet()
    torch.set_num_threads(1)
    batch = load_batch()
    print(describe(batch))
    rows = [compare(batch, case) for case in CASES]
    print(table(rows))
    print(
        f"tolerance: d_loss <= {LOSS_ATOL}, d_grad_rel <= {GRAD_RTOL}, d_tensor_rel <= {TENSOR_RTOL}, "
        f"same_logp_d_grad_rel <= {SAME_LOGP_RTOL}, d_adv <= {ADV_ATOL}, d_reward = 0, equal clip fractions"
    )
    print(
        "\nTRL's default use_bias_correction_kl=True (KL x pi/pi_old; gfpo-bench: the GRPO paper's k3), not gated:"
    )
    print(table([compare(batch, case) for case in TRL_DEFAULT_KL]))
    return 0 if all(within_tolerance(row) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
