"""`sampler=independent`: K i.i.d. paths per prompt with HF `generate` (KV cache, temperature, top-p).

The standard group sampling of GRPO-style methods. Paths rarely share long prefixes, which is why
`gfpo` pairs are scarce under it; see `sampler=branch`.
"""

from __future__ import annotations

import torch

from gfpo_bench.sampling.base import SAMPLERS, Sampler, cut_at_eos, make_rollouts
from gfpo_bench.types import Problem, Rollouts


def generate(
    model,
    tokenizer,
    prompt_ids: list[list[int]],
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    greedy: bool = False,
) -> list[list[int]]:
    """n completions per prompt (ids cut after eos), in prompt-major order. Left-padded batch."""
    width = max(len(p) for p in prompt_ids)
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids], device=device)
    attn = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids], device=device)
    kwargs = (
        dict(do_sample=False)
        if greedy
        else dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
    )
    out = model.generate(
        input_ids=input_ids,
        attention_mask=attn,
        max_new_tokens=max_new_tokens,
        num_return_sequences=n,
        pad_token_id=pad,
        eos_token_id=tokenizer.eos_token_id,
        use_cache=True,
        **kwargs,
    )  # [P*n, width + new]
    return [cut_at_eos(row, tokenizer.eos_token_id, pad) for row in out[:, width:].tolist()]


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
