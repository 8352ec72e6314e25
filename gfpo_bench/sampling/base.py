"""The Sampler contract and the one function that turns generated ids into `Rollouts`.

Samplers are registered by name (`sampler=independent`, `sampler=branch`) and return Rollouts whose
`generated_tokens` counts every token actually generated (shared prefixes once), so strategies are
compared at equal compute.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from gfpo_bench.errors import PromptTooLongError
from gfpo_bench.models.logprobs import pad_right
from gfpo_bench.models.prompting import PromptFormatter, encode_completion, encode_prompt
from gfpo_bench.registry import Registry
from gfpo_bench.sampling.steps import step_spans
from gfpo_bench.types import Problem, Rollouts

SAMPLERS: Registry[type[Sampler]] = Registry("sampler")


@dataclass
class GenerationConfig:
    k: int = 8  # paths per prompt
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64


class Sampler(ABC):
    def __init__(
        self, tokenizer, formatter: PromptFormatter, gen: GenerationConfig, max_context: int
    ) -> None:
        self.tok, self.formatter, self.gen, self.max_context = tokenizer, formatter, gen, max_context

    def encode_prompts(self, task, problems: list[Problem]) -> list[list[int]]:
        out = []
        for p in problems:
            ids = encode_prompt(self.tok, self.formatter, task, p)
            if len(ids) + self.gen.max_new_tokens > self.max_context:
                raise PromptTooLongError(
                    f"prompt of {p.uid} has {len(ids)} tokens; with sampler.max_new_tokens="
                    f"{self.gen.max_new_tokens} it exceeds the model's context of {self.max_context}"
                )
            out.append(ids)
        return out

    def state_dict(self) -> dict:
        """The sampler's own random state (sampling itself draws from torch's global RNG, which the
        module checkpoints); none here."""
        return {}

    def load_state_dict(self, state: dict) -> None:  # noqa: B027  (stateless unless overridden)
        return None

    @abstractmethod
    def sample(self, model, task, problems: list[Problem]) -> Rollouts:
        """K paths for each problem."""


def make_rollouts(
    tokenizer,
    problems: list[Problem],
    group: list[int],
    prompt_ids: list[list[int]],
    completion_ids: list[list[int]],
    generated_tokens: int,
    parent: list[int] | None = None,
    branch_pos: list[int] | None = None,
) -> Rollouts:
    """Assemble Rollouts from per-path prompt and completion ids (one entry per path)."""
    seqs = [p + c for p, c in zip(prompt_ids, completion_ids)]
    tokens, attn = pad_right(seqs, tokenizer.pad_token_id)
    comp = torch.zeros_like(attn)
    spans = []
    for i, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
        comp[i, len(p) : len(p) + len(c)] = True
        spans.append([(len(p) + a, len(p) + b) for a, b in step_spans(tokenizer, c)])
    texts = tokenizer.batch_decode(
        [[t for t in c if t != tokenizer.eos_token_id] for c in completion_ids], skip_special_tokens=False
    )
    return Rollouts(
        problems=problems,
        group=torch.tensor(group, dtype=torch.long),
        tokens=tokens,
        attention_mask=attn,
        completion_mask=comp,
        prompt_len=torch.tensor([len(p) for p in prompt_ids], dtype=torch.long),
        texts=texts,
        step_spans=spans,
        parent=None if parent is None else torch.tensor(parent, dtype=torch.long),
        branch_pos=None if branch_pos is None else torch.tensor(branch_pos, dtype=torch.long),
        generated_tokens=generated_tokens,
    )


def rollouts_from_texts(
    tokenizer, formatter: PromptFormatter, task, problems: list[Problem], texts: list[list[str]]
) -> Rollouts:
    """Rollouts from given completion texts (texts[g] = the paths of problems[g]); for tests and
    for scoring policies that return text (the reference policy)."""
    group, prompts, comps = [], [], []
    for g, (p, paths) in enumerate(zip(problems, texts)):
        p_ids = encode_prompt(tokenizer, formatter, task, p)
        for t in paths:
            group.append(g)
            prompts.append(p_ids)
            comps.append(encode_completion(tokenizer, t))
    return make_rollouts(tokenizer, problems, group, prompts, comps, sum(len(c) for c in comps))
