"""Plain data types that flow between the boxes of the one loop.

prompts -> Sampler -> Rollouts -> Reward -> RewardOutput -> Pairing -> Pairs -> PairwiseLoss

Every tensor field carries its shape in a comment. N = number of sampled paths in a batch,
L = padded sequence length (prompt + completion), M = number of pairs, P = number of problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class Problem:
    """One task instance. `solution` is a reference completion in the model's output format."""

    uid: str
    question: str  # the problem statement shown to the model
    answer: str  # reference final answer (math); reference program (code)
    solution: str  # "<think>...</think><answer>...</answer>" written as a model would
    tests: tuple[str, ...] = ()  # code tasks: assert statements run against the program
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Rollouts:
    """K sampled paths for each of P problems, as token tensors plus step bookkeeping."""

    problems: list[Problem]  # [P]
    group: Tensor  # [N] long, index into `problems` of each path
    tokens: Tensor  # [N, L] long, prompt + completion, right-padded with pad id
    attention_mask: Tensor  # [N, L] bool, True on real (non-pad) tokens
    completion_mask: Tensor  # [N, L] bool, True on generated tokens (incl. a final eos)
    prompt_len: Tensor  # [N] long, number of prompt tokens of each path
    texts: list[str]  # [N] decoded completions
    step_spans: list[list[tuple[int, int]]]  # [N][S_i] absolute [start, end) token span of each step
    parent: Tensor | None = None  # [N] long, branch sampler: index of the path it branched from, -1 if root
    branch_pos: Tensor | None = None  # [N] long, branch sampler: token position where it left its parent
    generated_tokens: int = 0  # tokens actually generated for this batch (shared prefixes counted once)

    @property
    def n(self) -> int:
        return self.tokens.shape[0]

    def group_indices(self) -> list[list[int]]:
        """Path indices of each problem's group, in order."""
        out: list[list[int]] = [[] for _ in self.problems]
        for i, g in enumerate(self.group.tolist()):
            out[g].append(i)
        return out

    def select(self, keep: list[int]) -> Rollouts:
        """Subset of paths (and the problems they refer to), groups renumbered."""
        idx = torch.as_tensor(keep, dtype=torch.long)
        old_groups = sorted({int(self.group[i]) for i in keep})
        remap = {g: j for j, g in enumerate(old_groups)}
        remap_path = {old: new for new, old in enumerate(keep)}
        parent = None
        if self.parent is not None:
            parent = torch.tensor([remap_path.get(int(self.parent[i]), -1) for i in keep], dtype=torch.long)
        return Rollouts(
            problems=[self.problems[g] for g in old_groups],
            group=torch.tensor([remap[int(self.group[i])] for i in keep], dtype=torch.long),
            tokens=self.tokens[idx],
            attention_mask=self.attention_mask[idx],
            completion_mask=self.completion_mask[idx],
            prompt_len=self.prompt_len[idx],
            texts=[self.texts[i] for i in keep],
            step_spans=[self.step_spans[i] for i in keep],
            parent=parent,
            branch_pos=None if self.branch_pos is None else self.branch_pos[idx],
            generated_tokens=self.generated_tokens,
        )


@dataclass
class RewardOutput:
    """Decomposed reward R = a*final + b*process + c*format, per path. Owns its metric names."""

    final: Tensor  # [N] float
    process: Tensor  # [N] float
    format: Tensor  # [N] float
    total: Tensor  # [N] float
    correct: Tensor  # [N] bool, raw correctness of the final answer, before reward noise (metrics only)
    step_scores: list[list[int]]  # [N][S_i] per-step scores r_t in {-1, 0, +1} as R_process read them
    # (after reward.process_noise)

    @property
    def observed_correct(self) -> Tensor:
        """[N] bool, the verdict the trainer sees: R_final > 0.5, flipped where reward.noise flipped it.
        Every consumer of right vs wrong reads this (srpo's pairs, DAPO's dynamic sampling and NLL
        targets), so a noisy-reward run is noisy for every method alike; `correct` is for metrics."""
        return self.final > 0.5

    def metrics(self, prefix: str = "train/reward") -> dict[str, float]:
        return {
            f"{prefix}/final": self.final.mean().item(),
            f"{prefix}/process": self.process.mean().item(),
            f"{prefix}/format": self.format.mean().item(),
            f"{prefix}/total": self.total.mean().item(),
            f"{prefix}/correct": self.correct.float().mean().item(),
        }


@dataclass
class Pairs:
    """Preference pairs (better, worse) within one problem's group, with divergence bookkeeping."""

    better: Tensor  # [M] long, path index of x+
    worse: Tensor  # [M] long, path index of x-
    diverge: Tensor  # [M] long, first absolute token position where the two sequences differ
    diverge_step: Tensor  # [M] long, index of the better path's step containing `diverge` (-1: none)
    prefix_frac: Tensor  # [M] float, shared completion tokens / shorter completion length
    sft_paths: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))  # [S] NLL targets

    @property
    def m(self) -> int:
        return int(self.better.numel())

    @property
    def has_signal(self) -> bool:
        """Anything to learn from: a pair, or paths for the SFT term."""
        return self.m > 0 or self.sft_paths.numel() > 0

    def paths(self) -> Tensor:
        """[U] the distinct paths the loss reads (sorted)."""
        return torch.unique(torch.cat([self.better, self.worse, self.sft_paths]))

    def local(self, remap: Tensor, device) -> Pairs:
        """The same pairs with path indices mapped through `remap` [N] (to rows of a scored subset)."""
        return Pairs(
            remap[self.better].to(device),
            remap[self.worse].to(device),
            self.diverge.to(device),
            self.diverge_step,
            self.prefix_frac,
            remap[self.sft_paths].to(device),
        )

    @staticmethod
    def empty() -> Pairs:
        z = torch.zeros(0, dtype=torch.long)
        return Pairs(z, z, z, z, torch.zeros(0))


def concat_rollouts(parts: list[Rollouts], pad_id: int) -> Rollouts:
    """Stack batches sampled separately (dynamic sampling refills); groups renumbered."""
    width = max(p.tokens.shape[1] for p in parts)

    def pad(t: Tensor, value) -> Tensor:
        return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

    offsets, groups, parents, total = [], [], [], 0
    for p in parts:
        offsets.append(total)
        total += len(p.problems)
    path_off = 0
    for p, off in zip(parts, offsets):
        groups.append(p.group + off)
        if p.parent is not None:
            parents.append(torch.where(p.parent >= 0, p.parent + path_off, p.parent))
        path_off += p.n
    has_branch = all(p.parent is not None for p in parts)
    return Rollouts(
        problems=[q for p in parts for q in p.problems],
        group=torch.cat(groups),
        tokens=torch.cat([pad(p.tokens, pad_id) for p in parts]),
        attention_mask=torch.cat([pad(p.attention_mask, False) for p in parts]),
        completion_mask=torch.cat([pad(p.completion_mask, False) for p in parts]),
        prompt_len=torch.cat([p.prompt_len for p in parts]),
        texts=[t for p in parts for t in p.texts],
        step_spans=[s for p in parts for s in p.step_spans],
        parent=torch.cat(parents) if has_branch else None,
        branch_pos=torch.cat([p.branch_pos for p in parts]) if has_branch else None,
        generated_tokens=sum(p.generated_tokens for p in parts),
    )


def select_rewards(r: RewardOutput, keep: list[int]) -> RewardOutput:
    idx = torch.as_tensor(keep, dtype=torch.long)
    return RewardOutput(
        r.final[idx],
        r.process[idx],
        r.format[idx],
        r.total[idx],
        r.correct[idx],
        [r.step_scores[i] for i in keep],
    )


def concat_rewards(parts: list[RewardOutput]) -> RewardOutput:
    return RewardOutput(
        *(
            torch.cat([getattr(p, f) for p in parts])
            for f in ("final", "process", "format", "total", "correct")
        ),
        [s for p in parts for s in p.step_scores],
    )
