"""The Task contract: problems by split, a checker for final answers, a verifier for steps.

Tasks are built by Hydra (`_target_` in conf/task/*.yaml). A task owns its data and its checkers;
the reward module combines them into R = a*final + b*process + c*format.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from gfpo_bench.types import Problem

Split = Literal["train", "val", "test"]


@dataclass(frozen=True)
class Score:
    correct: bool  # math: final answer equals the reference; code: the program passed every test
    extracted: str | None  # the answer (or program) taken from the completion; None if absent
    detail: str = ""  # short reason, e.g. "timeout", "no answer block"


class Task(ABC):
    """A source of problems plus the checks that turn a completion into reward components."""

    name: str = "task"
    kind: Literal["math", "code"] = "math"

    @abstractmethod
    def problems(self, split: Split) -> list[Problem]:
        """All problems of a split, in a fixed order. Raises ValueError on an empty split."""

    def prompt(self, problem: Problem) -> str:
        """The text given to the model (before any chat template)."""
        return problem.question

    def reference_solution(self, problem: Problem) -> str:
        """A right worked solution, for supervised losses during RL (sft_mix.py): the problem's own."""
        if problem.solution is None:
            raise ValueError(
                f"{self.name}: problem {problem.uid} has no reference solution (sft_mix needs one)"
            )
        return problem.solution

    @abstractmethod
    def score(self, problems: list[Problem], completions: list[str]) -> list[Score]:
        """Check each completion's final answer against its problem."""

    @abstractmethod
    def verify_steps(self, problem: Problem, steps: list[str]) -> list[int]:
        """Per-step scores r_t in {-1, 0, +1}: +1 verified correct, -1 verified wrong, 0 uncheckable."""


def require_nonempty(problems: list[Problem], what: str) -> list[Problem]:
    if not problems:
        raise ValueError(f"{what}: no problems (empty dataset or split)")
    return problems
