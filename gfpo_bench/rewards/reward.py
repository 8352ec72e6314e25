"""The decomposed reward R = alpha*R_final + beta*R_process + gamma*R_format (docs/design.md).

- R_final: 1 if the final answer is correct, else `wrong_final` (0, or -1 as a config switch).
- R_process: see `process.py` (`verifier` or `majority`).
- R_format: 1 if the completion has the reasoning format (`tasks/format.py`), else 0.
Optional `noise`: with probability `noise` a path's R_final is flipped (the noisy-reward experiment).
Optional `process_noise`: with probability `process_noise` each step score r_t has its sign flipped
(+1 <-> -1; a 0, a step the verifier cannot judge, stays 0), independently per step: a verifier that
errs step by step. It reaches R_process (`verifier`; `majority` reads no step scores) and every reader
of `RewardOutput.step_scores`; the branch sampler's `first_wrong` rule asks the task's verifier
itself and sees clean scores. Both draw from the reward's own generator (R_final flips first, then
one draw per step, each only when its knob is > 0, so a run without one draws as before), whose state
(with the fault count) is its `state_dict`: a resumed run flips the same ones. Faulted completions
(below) keep their all-wrong steps.

Faults: a task's checker or step verifier that raises on one completion (a parser bug, a sandbox
hiccup, a pathological answer) does not end the run. That completion counts as wrong (R_final =
wrong_final, every step scored -1), a warning names it, and `Reward.faults` counts it (logged as
`train/reward/faults`, written to summary.json as `reward_faults`). If every completion of a call
raises, the checker itself is broken: `RunFault`, because scoring them all wrong would train on noise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from gfpo_bench.config_schema import require
from gfpo_bench.errors import RunFault
from gfpo_bench.rewards.process import PROCESS_REWARDS
from gfpo_bench.tasks.base import Score, Task
from gfpo_bench.tasks.checked import FAULT, describe, score_safely, verify_safely
from gfpo_bench.tasks.format import parse_completion
from gfpo_bench.types import Problem, RewardOutput, Rollouts

log = logging.getLogger(__name__)
WARN_FAULTS = 10  # faults logged one by one per process; later ones are only counted


@dataclass
class RewardWeights:
    final: float = 1.0
    process: float = 0.5
    format: float = 0.2


class Reward:
    """Callable: (task, rollouts) -> RewardOutput.

    >>> from gfpo_bench.tasks.arith import ArithTask
    >>> from gfpo_bench.models.tokenizer import build_char_tokenizer
    >>> from gfpo_bench.models.prompting import PromptFormatter
    >>> from gfpo_bench.sampling.base import rollouts_from_texts
    >>> task = ArithTask(); p = task.problems("test")[0]
    >>> r = rollouts_from_texts(build_char_tokenizer(), PromptFormatter(), task, [p], [[p.solution, "<answer>0</answer>"]])
    >>> out = Reward()(task, r); out.total.tolist()  # 1 + 0.5*1 + 0.2*1, and 0 + 0 + 0
    [1.7000000476837158, 0.0]
    """

    def __init__(
        self,
        weights: RewardWeights | Mapping | None = None,  # final, process, format (conf/reward)
        process: str = "verifier",
        wrong_final: float = 0.0,
        noise: float = 0.0,
        process_noise: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.weights = (
            RewardWeights(**weights) if isinstance(weights, Mapping) else (weights or RewardWeights())
        )
        self.process_fn = PROCESS_REWARDS.get(process)
        self.wrong_final = require("reward.wrong_final", wrong_final)  # ranges: config_schema.py
        self.noise = require("reward.noise", noise)
        self.process_noise = require("reward.process_noise", process_noise)
        self.gen = torch.Generator().manual_seed(seed)
        self.faults = 0  # completions whose checker or verifier raised, over the run

    def __call__(self, task: Task, rollouts: Rollouts) -> RewardOutput:
        problems = [rollouts.problems[g] for g in rollouts.group.tolist()]
        parsed = [parse_completion(text) for text in rollouts.texts]
        scores, errors = score_safely(task, problems, rollouts.texts)
        step_scores = []
        for i, (problem, completion) in enumerate(zip(problems, parsed)):
            steps, err = verify_safely(task, problem, completion.steps)
            step_scores.append(steps)
            if err is not None:
                errors.setdefault(i, err)
        self._count(task, problems, errors, rollouts.n)
        for i in errors:  # wrong, every step wrong: whichever check raised
            scores[i] = Score(correct=False, extracted=None, detail=FAULT)
            step_scores[i] = [-1] * len(parsed[i].steps)
        correct = torch.tensor([score.correct for score in scores], dtype=torch.bool)  # [N]

        final = torch.where(correct, 1.0, self.wrong_final)  # [N]
        if self.noise > 0:
            flip = torch.rand(rollouts.n, generator=self.gen) < self.noise
            final = torch.where(flip, torch.where(correct, self.wrong_final, 1.0), final)
        if self.process_noise > 0:
            step_scores = self._flip_steps(step_scores, set(errors))
        return self._combine(rollouts, parsed, final, correct, step_scores)

    def _flip_steps(self, step_scores: list[list[int]], faulted: set[int]) -> list[list[int]]:
        """Each step score's sign flipped with probability `process_noise` (one draw per step, in
        order; faulted completions draw too, so the stream does not depend on faults, but stay -1)."""
        flips = (torch.rand(sum(map(len, step_scores)), generator=self.gen) < self.process_noise).tolist()
        out, at = [], 0
        for i, scores in enumerate(step_scores):
            flip, at = flips[at : at + len(scores)], at + len(scores)
            out.append(scores if i in faulted else [-s if f else s for s, f in zip(scores, flip)])
        return out

    def components(
        self, rollouts: Rollouts, correct: torch.Tensor, step_scores: list[list[int]]
    ) -> RewardOutput:
        """The reward of completions already checked (`correct` [N], the verifier's `step_scores`),
        combined as `__call__` combines them, without reward noise, checkers or fault counting: for
        showing the reward of evaluated samples (callbacks/evaluation.py)."""
        parsed = [parse_completion(text) for text in rollouts.texts]
        final = torch.where(correct, 1.0, self.wrong_final)  # [N]
        return self._combine(rollouts, parsed, final, correct, step_scores)

    def _combine(self, rollouts, parsed, final, correct, step_scores) -> RewardOutput:
        process = self.process_fn(rollouts, parsed, step_scores)  # [N]
        fmt = torch.tensor([float(completion.format_ok) for completion in parsed])  # [N]
        weights = self.weights
        total = weights.final * final + weights.process * process + weights.format * fmt  # [N]
        return RewardOutput(final, process, fmt, total, correct, step_scores)

    def state_dict(self) -> dict:
        return {"noise_rng": self.gen.get_state(), "faults": self.faults}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["noise_rng"])
        self.faults = state["faults"]

    def _count(self, task: Task, problems: list[Problem], errors: dict[int, Exception], n: int) -> None:
        if errors and len(errors) == n > 1:
            raise RunFault(
                f"{task.name}: the reward raised on all {n} completions of a batch "
                f"({describe(next(iter(errors.values())))}): its checker is broken"
            )
        for i, error in sorted(errors.items()):
            self.faults += 1
            if self.faults <= WARN_FAULTS:
                more = " (further faults are only counted)" if self.faults == WARN_FAULTS else ""
                log.warning(
                    "reward: checking completion %d (problem %s) raised %s; counted as wrong%s",
                    i,
                    problems[i].uid,
                    describe(error),
                    more,
                )
