"""The Sampler contract and the one function that turns generated ids into `Rollouts`.

Samplers are registered by name (`sampler=independent`, `sampler=branch`) and return Rollouts whose
`generated_tokens` counts every token actually generated (shared prefixes once), so strategies are
compared at equal compute.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from gfpo_bench.config_schema import require
from gfpo_bench.errors import PromptTooLongError
from gfpo_bench.models.logprobs import pad_right
from gfpo_bench.models.prompting import PromptFormatter, encode_completion, encode_prompt
from gfpo_bench.registry import Registry
from gfpo_bench.sampling.steps import step_spans
from gfpo_bench.types import Problem, Rollouts

log = logging.getLogger(__name__)
SAMPLERS: Registry[type[Sampler]] = Registry("sampler")


@dataclass
class GenerationConfig:
    """How each path is drawn; the defaults are conf/sampler/*.yaml's."""

    k: int = 8  # paths per prompt
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 48

    def __post_init__(self) -> None:
        for key in ("k", "temperature", "top_p", "max_new_tokens"):  # ranges: config_schema.py
            require(f"sampler.{key}", getattr(self, key))


class Sampler(ABC):
    """Built from conf/sampler/*.yaml (`_partial_`): train.py passes the tokenizer, the prompt
    formatter and the model's context length; the YAML gives k, temperature, top_p, max_new_tokens."""

    def __init__(self, tokenizer, formatter: PromptFormatter, max_context: int, **generation) -> None:
        self.tok, self.formatter, self.max_context = tokenizer, formatter, max_context
        self.gen = GenerationConfig(**generation)

    def check_task(self, task, probe: int = 200) -> None:
        """Before training: a prompt that does not fit the context fails now, with one line; reference
        solutions longer than `max_new_tokens` warn (completions would be cut off and never pass)."""
        for problem in task.problems("val")[:1] + task.problems("train")[:1]:
            self.encode_prompts(task, [problem])
        need = max(
            len(encode_completion(self.tok, problem.solution)) for problem in task.problems("train")[:probe]
        )
        if need > self.gen.max_new_tokens:  # e.g. task=code needs ~112
            log.warning(
                "%s reference solutions take up to %d tokens but sampler.max_new_tokens=%d: completions "
                "will be cut off (raise sampler.max_new_tokens)",
                task.name,
                need,
                self.gen.max_new_tokens,
            )

    def encode_prompts(self, task, problems: list[Problem]) -> list[list[int]]:
        out = []
        for problem in problems:
            ids = encode_prompt(self.tok, self.formatter, task, problem)
            if len(ids) + self.gen.max_new_tokens > self.max_context:
                raise PromptTooLongError(
                    f"prompt of {problem.uid} has {len(ids)} tokens; with sampler.max_new_tokens="
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
    seqs = [prompt + completion for prompt, completion in zip(prompt_ids, completion_ids)]
    tokens, attn = pad_right(seqs, tokenizer.pad_token_id)
    completion_mask = torch.zeros_like(attn)
    spans = []
    for i, (prompt, completion) in enumerate(zip(prompt_ids, completion_ids)):
        offset = len(prompt)  # step spans are found in the completion, stored as absolute positions
        completion_mask[i, offset : offset + len(completion)] = True
        spans.append([(offset + start, offset + end) for start, end in step_spans(tokenizer, completion)])
    texts = tokenizer.batch_decode(
        [[token for token in completion if token != tokenizer.eos_token_id] for completion in completion_ids],
        skip_special_tokens=False,
    )
    return Rollouts(
        problems=problems,
        group=torch.tensor(group, dtype=torch.long),
        tokens=tokens,
        attention_mask=attn,
        completion_mask=completion_mask,
        prompt_len=torch.tensor([len(prompt) for prompt in prompt_ids], dtype=torch.long),
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
    group, prompts, completions = [], [], []
    for g, (problem, paths) in enumerate(zip(problems, texts)):
        prompt = encode_prompt(tokenizer, formatter, task, problem)
        for text in paths:
            group.append(g)
            prompts.append(prompt)
            completions.append(encode_completion(tokenizer, text))
    return make_rollouts(tokenizer, problems, group, prompts, completions, sum(map(len, completions)))
