"""Pairing strategies: the one thing that differs between SRPO, VAPO, DAPO, GFPO and the baselines.

A strategy looks at one batch of Rollouts and their RewardOutput and returns (better, worse) index
pairs within each prompt's group. Everything else (divergence point, prefix fraction, the step the
pair splits at) is computed once, here, for every strategy alike, and so are the pieces several
strategies share: `informative` (pairs whose rewards differ by more than eps) and `cap` (a random
subset of at most `max_pairs_per_group`). A strategy's constructor takes only the knobs it uses.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod

import torch
from torch import Tensor

from gfpo_bench.analytics import pair_metrics
from gfpo_bench.config_schema import require
from gfpo_bench.errors import ConfigError
from gfpo_bench.registry import Registry
from gfpo_bench.types import Pairs, RewardOutput, Rollouts

PAIRINGS: Registry[type[PairingStrategy]] = Registry("pairing strategy")


def shared_prefix_len(a: Tensor, b: Tensor) -> int:
    """Number of leading positions where two 1-D token tensors agree (compared up to the shorter)."""
    n = min(a.numel(), b.numel())
    neq = (a[:n] != b[:n]).nonzero()
    return int(neq[0]) if neq.numel() else n


def divergence(rollouts: Rollouts, i: int, j: int) -> int:
    """First absolute token position where paths i and j differ (real tokens only)."""
    len_i, len_j = int(rollouts.attention_mask[i].sum()), int(rollouts.attention_mask[j].sum())
    return shared_prefix_len(rollouts.tokens[i, :len_i], rollouts.tokens[j, :len_j])


def step_index(spans: list[tuple[int, int]], pos: int) -> int:
    """Index of the step containing token `pos` (or the next step after it); len(spans) if past all
    steps (the pair splits in the answer); -1 if the path has no steps."""
    if not spans:
        return -1
    for step, (_, end) in enumerate(spans):
        if pos < end:
            return step
    return len(spans)


class PairingStrategy(ABC):
    """Subclasses implement `select`; config knobs are constructor kwargs (conf/pairing/*.yaml, built
    with `hydra.utils.instantiate`). Each subclass takes exactly the knobs its `select` uses."""

    dynamic_sampling: bool = False  # drop groups with no correctness spread and refill (DAPO)
    objective = (
        None  # the loss that reads this method's signal; None: the shared pairwise loss (grpo.py has its own)
    )

    def __init__(self, name: str, sft_coef: float = 0.0) -> None:
        registered = PAIRINGS.get(name)  # an unknown name lists the valid ones
        if registered is not type(self):
            raise ConfigError(
                f"pairing name {name!r} is the label of {registered.__name__}, not of {type(self).__name__}"
            )
        self.name = name  # the method's label in logs and summary.json
        # weight of the NLL term on the group's correct paths (0: off); its range: config_schema.py
        self.sft_coef = require("pairing.sft_coef", sft_coef)

    @abstractmethod
    def select(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> list[tuple[int, int]]:
        """(better, worse) path indices, both from the same group."""

    def needs_reference(self, pairwise_loss) -> bool:
        """Does a step of this strategy score the paths under the frozen reference too?"""
        return pairwise_loss.use_reference

    @staticmethod
    def signal_metrics(rollouts: Rollouts, rewards: RewardOutput, pairs: Pairs) -> dict[str, float]:
        """What a step logs about its training signal: the pair statistics (analytics.py)."""
        return pair_metrics(rollouts, rewards, pairs)

    def keep_group(self, correct: list[bool]) -> bool:
        """Dynamic sampling: does a group with these observed verdicts (`RewardOutput.observed_correct`,
        noised when reward.noise > 0) stay in the batch?"""
        return True

    def __call__(self, rollouts: Rollouts, rewards: RewardOutput, rng: random.Random) -> Pairs:
        chosen = self.select(rollouts, rewards, rng)
        pairs = annotate(rollouts, chosen)
        if self.sft_coef > 0 and pairs.m:
            pairs.sft_paths = sft_targets(rollouts, rewards, pairs)
        return pairs


def informative(idx: list[int], r: list[float], eps: float) -> list[tuple[int, int]]:
    """All (better, worse) pairs among paths `idx` with |r_i - r_j| > eps."""
    out = []
    for a in range(len(idx)):
        for b in range(a + 1, len(idx)):
            i, j = idx[a], idx[b]
            if abs(r[i] - r[j]) > eps:
                out.append((i, j) if r[i] > r[j] else (j, i))
    return out


def cap(pairs: list[tuple[int, int]], max_pairs: int | None, rng: random.Random) -> list[tuple[int, int]]:
    """A random `max_pairs` of `pairs` (all of them if there are no more, or max_pairs is None)."""
    if max_pairs is None or len(pairs) <= max_pairs:
        return pairs
    return rng.sample(pairs, max_pairs)


def sft_targets(rollouts: Rollouts, rewards: RewardOutput, pairs: Pairs) -> Tensor:
    """[S] the NLL term's paths: every path the reward judged right (`observed_correct`: R_final > 0.5,
    noised when reward.noise > 0, the label srpo pairs by) in a group that produced a pair. A path
    judged wrong that merely beat another on the process or format reward is never imitated (as in
    VAPO's positive-example LM loss and rejection-sampling fine-tuning). Under reward noise a wrong
    answer whose R_final was flipped is imitated: the trainer cannot tell, for any method."""
    paired_groups = torch.unique(rollouts.group[pairs.better])  # [G']
    keep = rewards.observed_correct & torch.isin(rollouts.group, paired_groups)  # [N]
    return keep.nonzero().flatten()


def annotate(rollouts: Rollouts, chosen: list[tuple[int, int]]) -> Pairs:
    """Divergence bookkeeping for each pair; pairs of identical sequences are dropped (no signal)."""
    rows = []  # one per kept pair: its (better, worse, diverge, diverge_step, prefix_frac)
    for better, worse in chosen:
        diverge = divergence(rollouts, better, worse)
        better_len = int(rollouts.attention_mask[better].sum())
        worse_len = int(rollouts.attention_mask[worse].sum())
        if diverge >= better_len and diverge >= worse_len:
            continue  # identical token sequences
        prompt_len = int(rollouts.prompt_len[better])
        shorter = max(1, min(better_len, worse_len) - prompt_len)  # completion tokens of the shorter path
        diverge_step = step_index(rollouts.step_spans[better], diverge)
        rows.append((better, worse, diverge, diverge_step, max(0, diverge - prompt_len) / shorter))
    if not rows:
        return Pairs.empty()
    better, worse, diverge, diverge_step, prefix_frac = zip(*rows)  # the columns

    def as_long(column: tuple[int, ...]) -> Tensor:
        return torch.tensor(column, dtype=torch.long)

    return Pairs(
        better=as_long(better),
        worse=as_long(worse),
        diverge=as_long(diverge),
        diverge_step=as_long(diverge_step),
        prefix_frac=torch.tensor(prefix_frac, dtype=torch.float),
    )
