"""Hand-built rollouts for unit tests: real tokenizer, real task, chosen completion texts."""

from __future__ import annotations

from gfpo_bench.models.prompting import PromptFormatter
from gfpo_bench.models.tokenizer import build_char_tokenizer
from gfpo_bench.rewards.reward import Reward
from gfpo_bench.sampling.base import rollouts_from_texts
from gfpo_bench.tasks.arith import ArithTask
from gfpo_bench.tasks.format import render_completion

TOK = build_char_tokenizer()
TASK = ArithTask()


def problem(question_nums: list[int], ops: list[str]):
    """An arith Problem with the given chain, e.g. ([3, 4, 2], ['+', '-']) -> 3+4-2."""
    from gfpo_bench.types import Problem

    steps, acc = [], question_nums[0]
    for op, x in zip(ops, question_nums[1:]):
        res = acc + x if op == "+" else acc - x
        steps.append(f"{acc}{op}{x}={res}")
        acc = res
    q = TASK._question(question_nums, ops)
    return Problem(
        uid=q,
        question=q,
        answer=str(acc),
        solution=render_completion(steps, str(acc)),
        meta={"nums": question_nums, "ops": ops},
    )


def rollouts(groups: list[tuple]):
    """groups: [(problem, [completion texts])] -> (Rollouts, RewardOutput) with the default reward."""
    probs = [g[0] for g in groups]
    r = rollouts_from_texts(TOK, PromptFormatter(), TASK, probs, [g[1] for g in groups])
    return r, Reward()(TASK, r)


def comp(*steps: str, answer: str) -> str:
    return render_completion(list(steps), answer)
