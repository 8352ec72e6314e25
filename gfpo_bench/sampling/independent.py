"""`sampler=independent`: K i.i.d. paths per prompt (temperature, top-p), GRPO-style group sampling.

Generation is `models/generation.py`'s: each prompt is encoded once and its KV cache shared by its K
paths. Paths rarely share long prefixes, which is why `gfpo` pairs are scarce under it; see
`sampler=branch`.
"""

from __future__ import annotations

import torch

from gfpo_bench.models.generation import generate
from gfpo_bench.sampling.base import SAMPLERS, Sampler, make_rollouts
from gfpo_bench.types import Problem, Rollouts


@SAMPLERS.register("independent")
class IndependentSampler(Sampler):
    @torch.no_grad()
    def sample(self, model, task, problems: list[Problem]) -> Rollouts:
        prompts = self.encode_prompts(task, problems)
        k = self.gen.k
        comps = generate(
            model, self.tok, prompts, k, self.gen.temperature, self.gen.top_p, self.gen.max_new_tokens
        )
        group = [g for g in range(len(problems)) for _ in range(k)]
        return make_rollouts(
            self.tok, problems, group, [prompts[g] for g in group], comps, sum(len(c) for c in comps)
        )
