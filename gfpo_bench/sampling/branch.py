"""`sampler=branch`: sample root paths, cut each at a step boundary, resample the rest from the cut.

Siblings share the prompt and the root's prefix token for token, so any two of them differ from one
step on: the pairs `pairing=gfpo` looks for (docs/design.md). Independent samples mostly share only a
short prefix (on arith, the copy of the first operands); scripts/bench_pairs.py measures both.

A prompt's group is its `roots` root paths plus, for each root, the continuations sampled at its
`branches` branch points, all in the same group (the root is one more sample from each of its
prefixes). With `siblings: null` the continuations fill the group to exactly `k` paths, so group
sizes match `sampler=independent`; (k - roots) continuation slots are spread evenly over the
roots * branches points, e.g. k=8, roots=2, branches=1 -> 2 roots + 2 x 3 siblings.

Where to cut (`branch_at`, a registry of rules, all at step starts):
- `uniform`: a random step boundary.
- `first_wrong`: the start of the root's first step the task's step verifier marks wrong, so the
  siblings redo exactly that step -- the data recipe of Step-DPO (Lai et al. 2024), which resamples
  from the prefix before the first erroneous step. Uniform when no step is wrong.
- `entropy` (default: a model-only signal, so it works on every task): the start of the step
  holding the root's highest-entropy next-token distribution,
  after TreeRL's entropy-guided forking (Hou et al. 2025). Departs from it: we fork at the step
  boundary before the uncertain token (whole steps, so the pair splits at one step) and only once
  (depth 1, not a tree).
A root with no reasoning steps is cut at a random token of its completion.

Compute: the prompt is encoded once for all its roots, and each distinct prompt+prefix once for all
its siblings: one forward pass over the contexts (minus their last token) fills a KV cache that is
then indexed out to the siblings (`Cache.batch_select_indices`), and `generate` continues from it,
feeding only new tokens. `generated_tokens` counts root tokens plus continuation tokens, so a shared
prefix is counted once. Each sibling's completion is capped at `max_new_tokens` like the roots'.
`reuse_prefix: false` re-encodes each context per continuation (for caches that cannot be indexed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from gfpo_bench.checkers.steps import first_wrong_step
from gfpo_bench.config_schema import branch_leaves_room, require, require_rule
from gfpo_bench.models.generation import cut_at_eos
from gfpo_bench.models.prompting import PromptFormatter
from gfpo_bench.registry import Registry
from gfpo_bench.sampling.base import SAMPLERS, Sampler, make_rollouts
from gfpo_bench.sampling.steps import step_spans
from gfpo_bench.tasks.format import parse_completion
from gfpo_bench.types import Problem, Rollouts


# --- where to cut ---------------------------------------------------------------------------------
@dataclass
class RootView:
    """What a branch rule sees of one root path; positions are relative to its completion."""

    steps: list[tuple[int, int]]  # [S] token span [start, end) of each reasoning step, S >= 1
    scores: list[int] | None = None  # [S] step verifier's r_t in {-1, 0, +1} (rules with needs_scores)
    entropy: list[float] | None = None  # [T] entropy of the next-token distribution (at the sampling
    # temperature) that completion token t was drawn from (rules with needs_entropy)


class BranchRule:
    """Picks `n` step indices of a root to cut at (the cut is the step's first token)."""

    needs_scores = False  # the sampler runs the task's step verifier on roots
    needs_entropy = False  # the sampler keeps the roots' next-token logits

    def __call__(self, root: RootView, n: int, rng: random.Random) -> list[int]:
        raise NotImplementedError


BRANCH_RULES: Registry[type[BranchRule]] = Registry("branch rule (sampler.branch_at)")


def fill(first: list[int], n_steps: int, n: int, rng: random.Random) -> list[int]:
    """`first`, then the other steps in random order, cycled to length n (repeats only when the
    root has fewer than n steps).

    >>> fill([2], 3, 4, random.Random(0))[0], sorted(fill([], 3, 3, random.Random(0)))
    (2, [0, 1, 2])
    """
    rest = [s for s in range(n_steps) if s not in first]
    rng.shuffle(rest)
    order = first + rest
    return [order[i % len(order)] for i in range(n)]


@BRANCH_RULES.register("uniform")
class UniformRule(BranchRule):
    def __call__(self, root: RootView, n: int, rng: random.Random) -> list[int]:
        return fill([], len(root.steps), n, rng)


@BRANCH_RULES.register("first_wrong")
class FirstWrongRule(BranchRule):
    needs_scores = True

    def __call__(self, root: RootView, n: int, rng: random.Random) -> list[int]:
        first_wrong = first_wrong_step(root.scores or [])
        return fill([first_wrong] if 0 <= first_wrong < len(root.steps) else [], len(root.steps), n, rng)


@BRANCH_RULES.register("entropy")
class EntropyRule(BranchRule):
    needs_entropy = True

    def __call__(self, root: RootView, n: int, rng: random.Random) -> list[int]:
        entropy = root.entropy or []
        peak = [max(entropy[start:end], default=0.0) for start, end in root.steps]  # [S]
        order = sorted(range(len(peak)), key=lambda step: -peak[step])  # stable: ties go to the earlier step
        return fill(order[:n], len(root.steps), n, rng)


# --- generation from shared contexts ---------------------------------------------------------------
class EntropyRecorder(LogitsProcessor):
    """Records the entropy of each step's next-token distribution at the sampling temperature ([n] per
    step, not the [n, V] logits, so it stays cheap for large vocabularies). generate applies user
    processors before its temperature / top-p warpers, so it sees the model's logits."""

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature, self.steps = temperature, []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(scores.float() / self.temperature, dim=-1)  # [n, V]
        self.steps.append(-(logp.exp() * logp).nan_to_num().sum(-1))  # [n]
        return scores


def continue_from(
    model,
    tokenizer,
    contexts: list[list[int]],
    counts: list[int],
    budgets: list[int],
    sampling: dict,
    reuse_prefix: bool = True,
    want_entropy: bool = False,
) -> tuple[list[list[int]], list[list[float]] | None]:
    """counts[c] continuations of each context c (context-major), continuation i capped at budgets[i]
    tokens and cut after eos. With reuse_prefix every context is encoded once, whatever its count.
    Returns the continuations and, if asked, the entropy of each drawn token's distribution."""
    pad, device = tokenizer.pad_token_id, next(model.parameters()).device
    width = max(len(c) for c in contexts)
    ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts], device=device)  # [C, W] left-padded
    lens = torch.tensor([len(c) for c in contexts], device=device)  # [C]
    attn = (torch.arange(width, device=device)[None, :] >= width - lens[:, None]).long()  # [C, W]
    index = torch.repeat_interleave(
        torch.arange(len(contexts), device=device), torch.tensor(counts, device=device)
    )  # [n]
    entropy = EntropyRecorder(sampling.get("temperature", 1.0))
    cache = None
    if reuse_prefix and width > 1:
        pos = (attn.cumsum(-1) - 1).clamp_min(0)  # [C, W] left padding: real tokens start at 0
        cache = model(
            input_ids=ids[:, :-1], attention_mask=attn[:, :-1], position_ids=pos[:, :-1], use_cache=True
        ).past_key_values  # KV of every context but its last token
        cache.batch_select_indices(index)  # [C, ...] -> [n, ...]: one copy per continuation
    out = model.generate(
        input_ids=ids[index],
        attention_mask=attn[index],
        past_key_values=cache,  # generate feeds only the tokens the cache lacks (the last one)
        max_new_tokens=max(budgets),
        pad_token_id=pad,
        eos_token_id=tokenizer.eos_token_id,
        use_cache=True,
        return_dict_in_generate=True,
        logits_processor=LogitsProcessorList([entropy]) if want_entropy else None,
        **sampling,
    )
    rows = out.sequences[:, width:].tolist()  # [n, T]
    continuations = [
        cut_at_eos(row[:budget], tokenizer.eos_token_id, pad) for row, budget in zip(rows, budgets)
    ]
    return continuations, torch.stack(entropy.steps, dim=1).tolist() if want_entropy else None  # [n, T]


# --- the sampler -----------------------------------------------------------------------------------
@SAMPLERS.register("branch")
class BranchSampler(Sampler):
    def __init__(
        self,
        tokenizer,
        formatter: PromptFormatter,
        max_context: int,
        roots: int = 2,
        branches: int = 1,
        siblings: int | None = None,
        branch_at: str = "entropy",
        reuse_prefix: bool = True,
        seed: int = 0,
        **generation,  # k, temperature, top_p, max_new_tokens (sampling/base.py GenerationConfig)
    ) -> None:
        super().__init__(tokenizer, formatter, max_context, **generation)
        require("sampler.roots", roots)  # the ranges and the rule across keys: config_schema.py
        require("sampler.branches", branches)
        require("sampler.siblings", siblings)
        require_rule(branch_leaves_room, self.gen.k, roots, siblings)
        self.roots, self.branches, self.siblings = roots, branches, siblings
        self.rule = BRANCH_RULES.get(branch_at)()
        self.reuse_prefix = reuse_prefix
        self.rng = random.Random(seed)

    def sibling_counts(self) -> list[list[int]]:
        """counts[r][j]: continuations at branch point j of root r (of one prompt).

        >>> s = BranchSampler(None, None, 256, roots=2, branches=2, k=8)
        >>> s.sibling_counts(), s.group_size
        ([[2, 1], [2, 1]], 8)
        """
        if self.siblings is not None:
            return [[self.siblings] * self.branches for _ in range(self.roots)]
        slots, points = self.gen.k - self.roots, self.roots * self.branches
        # point i -> (root i % roots, branch i // roots): extra slots spread across roots first
        flat = [slots // points + (i < slots % points) for i in range(points)]
        return [[flat[j * self.roots + r] for j in range(self.branches)] for r in range(self.roots)]

    def state_dict(self) -> dict:
        return {"rng": self.rng.getstate()}  # where to cut: kept so a resumed run cuts the same

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state["rng"])

    @property
    def group_size(self) -> int:
        return self.roots + sum(map(sum, self.sibling_counts()))

    def sampling_kwargs(self) -> dict:
        return dict(do_sample=True, temperature=self.gen.temperature, top_p=self.gen.top_p, top_k=0)

    def cuts(self, task, problem: Problem, comp: list[int], entropy: list[float] | None) -> list[int]:
        """Completion offsets to cut one root at, one per branch point."""
        n = self.branches
        spans = step_spans(self.tok, comp)
        if not spans:
            return [self.rng.randint(1, len(comp) - 1) if len(comp) > 1 else 0 for _ in range(n)]
        scores = None
        if self.rule.needs_scores:
            text = self.tok.decode(
                [token for token in comp if token != self.tok.eos_token_id], skip_special_tokens=False
            )
            scores = task.verify_steps(problem, parse_completion(text).steps)
        steps = self.rule(RootView(spans, scores, entropy), n, self.rng)
        return [spans[step][0] for step in steps]

    @torch.no_grad()
    def sample(self, model, task, problems: list[Problem]) -> Rollouts:
        prompts = self.encode_prompts(task, problems)  # [P]
        max_new, sampling = self.gen.max_new_tokens, self.sampling_kwargs()
        want_entropy = self.rule.needs_entropy
        n_roots = [self.roots] * len(prompts)
        root_budgets = [max_new] * sum(n_roots)
        roots, entropy = continue_from(
            model, self.tok, prompts, n_roots, root_budgets, sampling, self.reuse_prefix, want_entropy
        )  # [P*R] root completions, prompt-major
        points = self.branch_points(task, problems, roots, entropy)  # {(root, cut): siblings}
        contexts = [prompts[i // self.roots] + roots[i][:cut] for i, cut in points]
        budgets = [max_new - cut for (_, cut), n_siblings in points.items() for _ in range(n_siblings)]
        continuations, _ = continue_from(
            model, self.tok, contexts, list(points.values()), budgets, sampling, self.reuse_prefix
        )  # [sum of siblings], point-major

        # each root followed by its siblings, group by group
        siblings: list[list[tuple[int, list[int]]]] = [[] for _ in roots]
        pending = iter(continuations)
        for (i, cut), n_siblings in points.items():
            siblings[i] += [(cut, next(pending)) for _ in range(n_siblings)]
        # one row per path: (group, prompt ids, completion ids, parent row, branch position)
        rows: list[tuple[int, list[int], list[int], int, int]] = []
        for i, comp in enumerate(roots):
            g = i // self.roots
            root_row = len(rows)
            rows.append((g, prompts[g], comp, -1, -1))
            rows += [
                (g, prompts[g], comp[:cut] + cont, root_row, len(prompts[g]) + cut)
                for cut, cont in siblings[i]
            ]
        group, prompt_ids, comps, parent, branch_pos = (list(col) for col in zip(*rows))
        generated = sum(map(len, roots)) + sum(map(len, continuations))  # shared prefixes counted once
        return make_rollouts(self.tok, problems, group, prompt_ids, comps, generated, parent, branch_pos)

    def branch_points(
        self, task, problems: list[Problem], roots: list[list[int]], entropy: list[list[float]] | None
    ) -> dict[tuple[int, int], int]:
        """{(root index, cut): number of siblings}; two branch points at the same cut are merged."""
        counts = self.sibling_counts()
        points: dict[tuple[int, int], int] = {}
        for i, comp in enumerate(roots):
            g, r = divmod(i, self.roots)
            root_entropy = None if entropy is None else entropy[i]
            for cut, n_siblings in zip(self.cuts(task, problems[g], comp, root_entropy), counts[r]):
                if n_siblings:
                    points[(i, cut)] = points.get((i, cut), 0) + n_siblings
        return points
