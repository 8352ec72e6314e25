"""Process reward R_process, two ways (docs/design.md), registered by name (`reward.process=...`).

- `verifier`: mean of per-step scores r_t in {-1, 0, +1} from the task's step verifier, (1/T)*sum r_t
  (0 for a path with no steps).
- `majority`: self-consistency, 1[path's answer is in the majority answer cluster] over the K paths
  of its prompt (paths with no answer are never in the cluster). Follows Wang et al. 2023.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import Tensor

from gfpo_bench.registry import Registry
from gfpo_bench.tasks.format import ParsedCompletion
from gfpo_bench.types import Rollouts

PROCESS_REWARDS: Registry = Registry("process reward")


@PROCESS_REWARDS.register("verifier")
def verifier_process(
    rollouts: Rollouts, parsed: list[ParsedCompletion], step_scores: list[list[int]]
) -> Tensor:
    return torch.tensor([sum(scores) / len(scores) if scores else 0.0 for scores in step_scores])  # [N]


@PROCESS_REWARDS.register("majority")
def majority_process(
    rollouts: Rollouts, parsed: list[ParsedCompletion], step_scores: list[list[int]]
) -> Tensor:
    out = torch.zeros(rollouts.n)
    for idx in rollouts.group_indices():
        answers = [parsed[i].answer for i in idx]
        counts = Counter(answer for answer in answers if answer is not None)
        if not counts:
            continue
        top = max(counts.values())
        majority = {answer for answer, count in counts.items() if count == top}
        for i, answer in zip(idx, answers):
            out[i] = float(answer in majority)
    return out
