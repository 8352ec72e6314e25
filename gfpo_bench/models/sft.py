"""Supervised fine-tuning on reference solutions: the warm start before RL (and `stage=sft`).

Plain next-token NLL on completion tokens only (token-level mean over the batch).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from gfpo_bench.models.logprobs import completion_nll, pad_right, token_logprobs
from gfpo_bench.models.prompting import PromptFormatter, encode_completion, encode_prompt
from gfpo_bench.tasks.base import Task


@dataclass
class SFTConfig:
    steps: int = 2000  # optimizer steps (conf/model/tiny.yaml says why)
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 20


def encode_examples(tokenizer, prompt_ids: list[list[int]], completions: list[str]):
    """-> tokens [N, L], attention_mask [N, L], completion_mask [N, L]; completion ends with eos."""
    seqs, masks = [], []
    for p_ids, c in zip(prompt_ids, completions):
        c_ids = encode_completion(tokenizer, c)
        seqs.append(p_ids + c_ids)
        masks.append([0] * len(p_ids) + [1] * len(c_ids))
    tokens, attn = pad_right(seqs, tokenizer.pad_token_id)
    comp, _ = pad_right(masks, 0)
    return tokens, attn, comp.bool()


def supervised_finetune(
    model, tokenizer, task: Task, cfg: SFTConfig, seed: int = 0, formatter: PromptFormatter | None = None
) -> list[float]:
    """Train in place on `task`'s train split; returns the loss curve."""
    formatter = formatter or PromptFormatter()
    problems = task.problems("train")
    rng = random.Random(seed)
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup)) * max(0.0, 1 - s / max(1, cfg.steps))
    )
    model.train()
    losses = []
    for _ in tqdm(range(cfg.steps), desc="SFT warm start", leave=False):
        batch = rng.sample(problems, min(cfg.batch_size, len(problems)))
        prompts = [encode_prompt(tokenizer, formatter, task, p) for p in batch]
        tokens, attn, comp = encode_examples(tokenizer, prompts, [p.solution for p in batch])
        loss = completion_nll(token_logprobs(model, tokens.to(device), attn.to(device)), comp.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses
