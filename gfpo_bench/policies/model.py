"""A causal LM as a policy: completions for a list of problems, greedy or sampled, in batches."""

from __future__ import annotations

import torch

from gfpo_bench.models.generation import generate
from gfpo_bench.models.prompting import PromptFormatter, encode_prompt
from gfpo_bench.tasks.base import Task
from gfpo_bench.types import Problem


class ModelPolicy:
    def __init__(
        self,
        model,
        tokenizer,
        task: Task,
        formatter: PromptFormatter | None = None,
        max_new_tokens: int = 64,
        batch_size: int = 64,
        temperature: float = 1.0,
        top_p: float = 1.0,
        greedy: bool | None = None,  # None: greedy for one completion per problem, sampled for more
    ) -> None:
        self.model, self.tok, self.task = model, tokenizer, task
        self.greedy = greedy
        self.formatter = formatter or PromptFormatter()
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.temperature, self.top_p = temperature, top_p

    @torch.no_grad()
    def complete(self, problems: list[Problem], n: int = 1, greedy: bool | None = None) -> list[str]:
        """n completions per problem (problem-major order); greedy by default when n == 1."""
        greedy = greedy if greedy is not None else self.greedy if self.greedy is not None else n == 1
        was_training = self.model.training
        self.model.eval()
        out: list[str] = []
        try:
            for i in range(0, len(problems), self.batch_size):
                chunk = problems[i : i + self.batch_size]
                ids = [encode_prompt(self.tok, self.formatter, self.task, p) for p in chunk]
                comps = generate(
                    self.model, self.tok, ids, n, self.temperature, self.top_p, self.max_new_tokens, greedy
                )
                out += self.tok.batch_decode(
                    [[t for t in c if t != self.tok.eos_token_id] for c in comps], skip_special_tokens=False
                )
        finally:
            self.model.train(was_training)
        return out
