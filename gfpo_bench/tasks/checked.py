"""A task's checker and step verifier, called so that one completion that makes them raise costs only
itself: `score_safely` and `verify_safely` return the scores plus the errors, per completion.

Training (`rewards/reward.py`) and evaluation (`eval/evaluate.py`) both score through these, count
a completion whose check raised as wrong, and log it; neither lets one bad completion end a run.
"""

from __future__ import annotations

from gfpo_bench.tasks.base import Score, Task
from gfpo_bench.types import Problem

FAULT = "reward fault"  # Score.detail of a completion whose check raised


def score_safely(
    task: Task, problems: list[Problem], texts: list[str]
) -> tuple[list[Score], dict[int, Exception]]:
    """task.score on the batch; if that raises, on each completion alone. Returns the scores (a
    completion whose check raised: wrong, detail FAULT) and {index: the exception}."""
    try:
        return task.score(problems, texts), {}
    except Exception:  # noqa: BLE001  (found one by one below)
        pass
    scores, errors = [], {}
    for i, (p, t) in enumerate(zip(problems, texts)):
        try:
            scores.append(task.score([p], [t])[0])
        except Exception as e:  # noqa: BLE001
            errors[i] = e
            scores.append(Score(correct=False, extracted=None, detail=FAULT))
    return scores, errors


def verify_safely(task: Task, problem: Problem, steps: list[str]) -> tuple[list[int], Exception | None]:
    """task.verify_steps; if it raises, every step scored -1 (wrong) and the exception."""
    try:
        return task.verify_steps(problem, steps), None
    except Exception as e:  # noqa: BLE001
        return [-1] * len(steps), e


def describe(e: Exception) -> str:
    first = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
