"""Embedded synthetic task `arith`: multi-step arithmetic with one verifiable operation per step.

A problem is a chain `a op1 b op2 c ...` evaluated left to right (parenthesised where precedence
would say otherwise). The reference solution writes one step per operation, `running op x = result`,
then the final answer. Generated from a seed, so it runs anywhere. Splits are disjoint by
construction: a question's split is fixed by a hash of its text, not by the order it was drawn in.

The step verifier re-checks each step against the problem itself (right operand, right operator,
right arithmetic), so a mistake is pinned to the step where it happens.

The fallible teacher (`teacher_slip`, the embedded default's 0.6): the *training* split's worked
solutions, which the SFT warm start imitates, drop the carry or borrow of a step with that
probability (`7+5=2`, `12-5=17`), and go on from the wrong value. Answers, and the val/test
references, are always right. A model trained on these solutions to convergence knows the
arithmetic but has picked up a habit: it drops a carry about 60% of the time, so greedy decoding is
wrong on nearly every problem that needs a carry (~41%), while sampling still finds the right step
40% of the time. That is the regime RL from a verifier can fix, and fix step by step (the first
wrong step is the carry), which is what the pairing strategies compete on. It departs from a clean
imitation warm start on purpose: with clean references, a half-trained warm start's errors are
gaps in knowledge that RL at this scale does not fill (docs/results.md, "Learning"). `teacher_slip=0`
restores the clean teacher.

Harmless variation (`commute`, 0 by default; the testable reasoning row sets 0.5): the worked
solutions write an addition step `running+x=result` as `x+running=result` with this probability,
in every split, and the step verifier accepts both forms. Two sampled paths of one problem then
often differ at an equivalent step *before* either errs, so a right-vs-wrong pair of independent
paths splits at a harmless difference, while two siblings branched after that step split where the
worse one goes wrong: the situation in which GFPO's shared-prefix pairs are claimed to assign
credit better (docs/results.md, Table 1's "split at the first wrong step"). Not in the GFPO paper's
tasks; built here so that the claim can be tested.
"""

from __future__ import annotations

import random
import re

from gfpo_bench.config_schema import require
from gfpo_bench.tasks.base import Score, Split
from gfpo_bench.tasks.format import parse_completion, render_completion
from gfpo_bench.tasks.synthetic import Draw, SyntheticTask
from gfpo_bench.types import Problem

_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
_STEP = re.compile(r"^\s*(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")


class ArithTask(SyntheticTask):
    """Difficulty knobs: `min_operands`..`max_operands` numbers, up to `digits` digits, `ops`.
    Defaults are conf/task/arith.yaml's."""

    name = "arith"
    kind = "math"
    stream = "arith"

    def __init__(
        self,
        seed: int = 0,
        min_operands: int = 3,
        max_operands: int = 4,
        digits: int = 1,
        ops: str = "+-",
        n_train: int = 20000,
        n_val: int = 500,
        n_test: int = 500,
        teacher_slip: float = 0.6,
        commute: float = 0.0,
    ) -> None:
        super().__init__(seed=seed, n_train=n_train, n_val=n_val, n_test=n_test)
        if not 2 <= min_operands <= max_operands:
            raise ValueError(
                f"arith: need 2 <= min_operands <= max_operands, got {min_operands}, {max_operands}"
            )
        if digits < 1 or not ops or set(ops) - set(_OPS):
            raise ValueError(f"arith: digits must be >= 1 and ops a subset of '+-*', got {digits}, {ops!r}")
        self.digits, self.ops = digits, ops
        self.teacher_slip = require("task.teacher_slip", teacher_slip)  # range: config_schema.py
        self.commute = require("task.commute", commute)
        self.min_operands, self.max_operands = min_operands, max_operands

    # --- generation -------------------------------------------------------------------------
    def draw(self, rng: random.Random) -> Draw:
        n = rng.randint(self.min_operands, self.max_operands)
        hi = 10**self.digits - 1
        nums = [rng.randint(0, hi) for _ in range(n)]
        ops = [rng.choice(self.ops) for _ in range(n - 1)]
        q = self._question(nums, ops)
        return Draw(question=q, split_key=q, parts=(nums, ops))

    @staticmethod
    def _question(nums: list[int], ops: list[str]) -> str:
        expr = str(nums[0])
        for i, (op, x) in enumerate(zip(ops, nums[1:])):
            # Left-to-right evaluation: bracket the running expression before a '*' that follows +/-.
            if op == "*" and any(o in "+-" for o in ops[:i]):
                expr = f"({expr})"
            expr = f"{expr}{op}{x}"
        return f"{expr}=?"

    @staticmethod
    def _solve(
        nums: list[int],
        ops: list[str],
        slip: float = 0.0,
        rng: random.Random | None = None,
        commute: float = 0.0,
        form_rng: random.Random | None = None,
    ) -> tuple[list[str], int]:
        """The worked steps and the final value. With `slip` > 0 this is the fallible teacher: on a
        step between two non-negative values that crosses a ten (a carry or a borrow) it drops the
        carry with probability `slip`, keeping the old tens digit, and goes on from the wrong value.
        With `commute` > 0 an addition is written operand-swapped (`5+7=12`) with that probability."""
        steps, acc = [], nums[0]
        for op, x in zip(ops, nums[1:]):
            res = _OPS[op](acc, x)
            if slip and min(acc, res) >= 0 and res // 10 != acc // 10 and rng.random() < slip:
                res = 10 * (acc // 10) + res % 10  # e.g. 7+5=2, 12-5=17
            swap = commute and op == "+" and form_rng.random() < commute
            steps.append(f"{x}{op}{acc}={res}" if swap else f"{acc}{op}{x}={res}")
            acc = res
        return steps, acc

    def build(self, draws: list[Draw], split: Split) -> list[Problem]:
        slip_rng = random.Random(f"arith-teacher-{self.seed}-{split}")  # own stream: problems unchanged
        # the training split's worked solution (the SFT data) is the teacher's, slips and all;
        # the answer every split is scored against is always the true one
        slip = self.teacher_slip if split == "train" else 0.0
        form_rng = random.Random(f"arith-forms-{self.seed}-{split}")  # own stream: slips unchanged
        out = []
        for i, d in enumerate(draws):
            nums, ops = d.parts
            _, ans = self._solve(nums, ops)
            steps, shown = self._solve(nums, ops, slip, slip_rng, self.commute, form_rng)
            out.append(
                Problem(
                    uid=self.uid(split, i),
                    question=d.question,
                    answer=str(ans),
                    solution=render_completion(steps, str(shown)),
                    meta={"nums": nums, "ops": ops},
                )
            )
        return out

    def reference_solution(self, problem: Problem) -> str:
        """The clean worked solution (no teacher slips, additions in one form), on every split."""
        steps, ans = self._solve(problem.meta["nums"], problem.meta["ops"])
        return render_completion(steps, str(ans))

    # --- checking ---------------------------------------------------------------------------
    def score(self, problems: list[Problem], completions: list[str]) -> list[Score]:
        out = []
        for p, c in zip(problems, completions):
            ans = parse_completion(c).answer
            if ans is None:
                out.append(Score(False, None, "no answer block"))
                continue
            out.append(Score(ans.strip() == p.answer, ans, ""))
        return out

    def verify_steps(self, problem: Problem, steps: list[str]) -> list[int]:
        """The t-th equation must be `running op_t x_t = result` (an addition also as `x_t+running`):
        right operands, operator and arithmetic, starting from the true running value (so one slip is
        pinned to its own step).

        >>> t = ArithTask(); p = t.problems("test")[0]
        >>> t.verify_steps(p, parse_completion(p.solution).steps) == [1] * len(p.meta["ops"])
        True
        """
        nums, ops = problem.meta["nums"], problem.meta["ops"]
        scores, acc, t = [], nums[0], 0  # t: index of the operation the next equation should do
        for step in steps:
            m = _STEP.match(step)
            if m is None:
                scores.append(0)  # not an equation: nothing to check, and no operation consumed
                continue
            a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
            want = (acc, nums[t + 1]) if t < len(ops) else None  # the operands, in either order for '+'
            ok = want is not None and op == ops[t] and c == _OPS[op](a, b)
            ok = ok and ((a, b) == want or (op == "+" and (b, a) == want))
            scores.append(1 if ok else -1)
            if t < len(ops):
                acc = _OPS[ops[t]](acc, nums[t + 1])
            t += 1
        return scores
