"""Embedded synthetic task `task=code`: write `def f(x)` from a math spec, one operation per line.

A problem composes 2-3 integer operations, drawn from a seed, into a spec written the way a person
would: `f(x)=max(3*(x-1),4)`, `f(x)=(9+x) mod 4`, `f(x)=floor((x-2)/3)`, constants on either side,
brackets only where needed. The answer is a short Python function that applies the operations
innermost first, one assignment per line; the reference writes those lines as its reasoning steps,
then the function:

    <think>
    y=x-1
    y=y*3
    y=max(y,4)
    </think>
    <answer>def f(x):
        y=x-1
        ...
        return y</answer>

Scoring is `CodeTask`'s: the program runs in the sandbox against hidden asserts `f(v) == ...` on a
few seeded inputs (negatives included, so `mod` and `floor` must follow Python's floor semantics).
The step verifier runs the partial program (steps 1..t) on the same hidden inputs with a restricted
AST evaluator (no sandbox needed: only `x`, `y`, integer literals, `+ - * // %`, unary minus,
`max`/`min`) and compares `y` with the reference's value after operation t. A step that is not an
assignment to `y` is uncheckable (0); a wrong one is -1, and so is every later step computed from it.

Built for the ~1M-parameter char-level tiny model: it must parse the spec (precedence, which side the
constant is on, the order to apply nested operations), which a short SFT warm start learns only in
part. Splits are disjoint by a hash of the reference *program*, so two specs of one function (`x+3`,
`3+x`) never land in different splits. Not from a paper; the step-by-step program format follows the
repository's completion format (`tasks/format.py`). Its name is `code_synth` (metrics
`val/code_synth/pass@1`), so that `val/code/pass@1` stays the pooled metric over all code tasks.
"""

from __future__ import annotations

import ast
import operator
import random
from collections.abc import Callable
from dataclasses import dataclass

from gfpo_bench.tasks.base import Split
from gfpo_bench.tasks.code_base import CodeTask
from gfpo_bench.tasks.format import render_completion
from gfpo_bench.tasks.synthetic import Draw, SyntheticTask
from gfpo_bench.types import Problem

ATOM, MUL, ADD, MOD = 4, 3, 2, 1  # precedence of a spec expression: function call / x, *, +/-, mod


@dataclass(frozen=True)
class Op:
    code: str  # one assignment; {v} is the operand (x on the first line, else y), {c} the constant
    # spec templates over {e} (the expression so far) and {c}: (text, min precedence of {e}, own)
    forms: tuple[tuple[str, int, int], ...]
    consts: range
    apply: Callable[[int, int], int]


OPS: dict[str, Op] = {
    "add": Op("y={v}+{c}", (("{e}+{c}", ADD, ADD), ("{c}+{e}", MUL, ADD)), range(1, 10), operator.add),
    "sub": Op("y={v}-{c}", (("{e}-{c}", ADD, ADD),), range(1, 10), operator.sub),
    "rsub": Op("y={c}-{v}", (("{c}-{e}", MUL, ADD),), range(1, 10), lambda y, c: c - y),
    "mul": Op("y={v}*{c}", (("{e}*{c}", MUL, MUL), ("{c}*{e}", ATOM, MUL)), range(2, 10), operator.mul),
    "div": Op("y={v}//{c}", (("floor({e}/{c})", MUL, ATOM),), range(2, 10), operator.floordiv),
    "mod": Op("y={v}%{c}", (("{e} mod {c}", ATOM, MOD),), range(3, 10), operator.mod),
    "max": Op("y=max({v},{c})", (("max({e},{c})", 0, ATOM),), range(0, 10), max),
    "min": Op("y=min({v},{c})", (("min({e},{c})", 0, ATOM),), range(0, 10), min),
}
_INPUT_RANGE = range(-10, 21)
_MAX_ABS = 10**12  # a checked step whose value grows past this is wrong, not a slow bignum loop


def spec(ops: list[tuple[str, int]], forms: list[int]) -> str:
    """Math-notation spec of applying `ops` to x in order, innermost first.

    >>> spec([("sub", 1), ("mul", 3), ("max", 4), ("mod", 7)], [0, 1, 0, 0])
    'f(x)=max(3*(x-1),4) mod 7'
    """
    expr, prec = "x", ATOM
    for (name, c), form in zip(ops, forms):
        text, need, own = OPS[name].forms[form]
        e = expr if prec >= need else f"({expr})"
        expr, prec = text.format(e=e, c=c), own
    return f"f(x)={expr}"


def program_lines(ops: list[tuple[str, int]]) -> list[str]:
    """One assignment per operation: `y=x-1`, `y=y*3`, ...

    >>> program_lines([("sub", 1), ("mul", 3)])
    ['y=x-1', 'y=y*3']
    """
    return [OPS[name].code.format(v="x" if t == 0 else "y", c=c) for t, (name, c) in enumerate(ops)]


def trace(ops: list[tuple[str, int]], inputs: list[int]) -> list[list[int]]:
    """[T][len(inputs)]: the value of y after each operation, for each input."""
    ys, out = list(inputs), []
    for name, c in ops:
        ys = [OPS[name].apply(y, c) for y in ys]
        out.append(ys)
    return out


# --- restricted evaluator for reasoning steps -------------------------------------------------

_BINOPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


class StepError(ValueError):
    """The step is an assignment to y but cannot be evaluated (unknown name, /0, huge value...)."""


def parse_step(step: str) -> ast.expr | None:
    """The right-hand side of a step `y=<expr>`; None if the step is not such an assignment."""
    try:
        tree = ast.parse(step.strip(), mode="exec")
    except (SyntaxError, ValueError, RecursionError):  # ValueError: a NUL byte (Python < 3.12)
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assign):
        return None
    node = tree.body[0]
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name) or node.targets[0].id != "y":
        return None
    return node.value


def eval_expr(node: ast.expr, env: dict[str, int | None]) -> int:
    """Evaluate integer arithmetic over `env` without `eval`; anything else raises StepError.

    >>> eval_expr(parse_step("y=max(x*3,4)%7"), {"x": 2, "y": None})
    6
    """
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name) and node.id in env:
        if env[node.id] is None:
            raise StepError(f"{node.id} used before assignment")
        return env[node.id]  # type: ignore[return-value]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = eval_expr(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = eval_expr(node.left, env), eval_expr(node.right, env)
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and b == 0:
            raise StepError("division by zero")
        v = _BINOPS[type(node.op)](a, b)
        if abs(v) > _MAX_ABS:
            raise StepError("value too large")
        return v
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("max", "min")
        and len(node.args) >= 2
        and not node.keywords
    ):
        args = [eval_expr(a, env) for a in node.args]
        return max(args) if node.func.id == "max" else min(args)
    raise StepError(f"unsupported expression: {ast.dump(node)[:60]}")


# --- the task ---------------------------------------------------------------------------------


class CodeSynthTask(SyntheticTask, CodeTask):
    """Difficulty knobs: `min_ops`..`max_ops` operations from `ops` (names in `OPS`). Defaults are
    conf/task/code.yaml's."""

    name = "code_synth"
    stream = "code"

    def __init__(
        self,
        seed: int = 0,
        min_ops: int = 2,
        max_ops: int = 3,
        ops: list[str] | tuple[str, ...] = tuple(OPS),
        n_inputs: int = 5,
        n_train: int = 20000,
        n_val: int = 200,
        n_test: int = 500,
        timeout_s: float = 5.0,
        memory_mb: int = 256,
        workers: int = 2,
    ) -> None:
        SyntheticTask.__init__(self, seed=seed, n_train=n_train, n_val=n_val, n_test=n_test)
        CodeTask.__init__(self, timeout_s=timeout_s, memory_mb=memory_mb, workers=workers)
        ops = list(ops)
        if not 1 <= min_ops <= max_ops:
            raise ValueError(f"code: need 1 <= min_ops <= max_ops, got {min_ops}, {max_ops}")
        unknown = sorted(set(ops) - set(OPS))
        if not ops or unknown:
            raise ValueError(f"code: unknown ops {unknown or ops}; valid: {', '.join(OPS)}")
        if not 2 <= n_inputs <= len(_INPUT_RANGE):
            raise ValueError(f"code: n_inputs must be in 2..{len(_INPUT_RANGE)}, got {n_inputs}")
        self.min_ops, self.max_ops, self.ops, self.n_inputs = min_ops, max_ops, ops, n_inputs

    # --- generation -------------------------------------------------------------------------
    def draw(self, rng: random.Random) -> Draw | None:
        n = rng.randint(self.min_ops, self.max_ops)
        ops = [(name, rng.choice(OPS[name].consts)) for name in (rng.choice(self.ops) for _ in range(n))]
        forms = [rng.randrange(len(OPS[name].forms)) for name, _ in ops]
        inputs = sorted(rng.sample(_INPUT_RANGE, self.n_inputs))
        lines = program_lines(ops)
        program = "def f(x):\n" + "".join(f"    {line}\n" for line in lines) + "    return y"
        values = trace(ops, inputs)
        if not self._useful(ops, inputs, values):
            return None
        return Draw(question=spec(ops, forms), split_key=program, parts=(ops, inputs, lines, program, values))

    @staticmethod
    def _useful(ops: list[tuple[str, int]], inputs: list[int], values: list[list[int]]) -> bool:
        """Every operation changes y for some input, and f is not constant on the hidden inputs."""
        before = [inputs, *values[:-1]]
        return all(a != b for a, b in zip(before, values)) and len(set(values[-1])) > 1

    def build(self, draws: list[Draw], split: Split) -> list[Problem]:
        out = []
        for i, d in enumerate(draws):
            ops, inputs, lines, program, values = d.parts
            out.append(
                Problem(
                    uid=self.uid(split, i),
                    question=d.question,
                    answer=program,
                    solution=render_completion(lines, program),
                    tests=tuple(f"assert f({v}) == {y}" for v, y in zip(inputs, values[-1])),
                    meta={"ops": ops, "inputs": inputs, "trace": values},
                )
            )
        return out

    # --- checking ---------------------------------------------------------------------------
    def verify_steps(self, problem: Problem, steps: list[str]) -> list[int]:
        """+1 if the partial program (steps 1..t) leaves y equal to the reference's value after
        operation t on every hidden input; -1 if it does not (or the step breaks, or there is no
        operation t); 0 if the step is not an assignment to y.

        >>> t = CodeSynthTask(); p = t.problems("test")[0]
        >>> lines = program_lines(p.meta["ops"])
        >>> t.verify_steps(p, lines) == [1] * len(lines)
        True
        >>> t.verify_steps(p, ["first apply the inner op", lines[0] + "+1", *lines[1:]])[:2]
        [0, -1]
        """
        inputs, ref = problem.meta["inputs"], problem.meta["trace"]
        envs: list[dict[str, int | None]] = [{"x": v, "y": None} for v in inputs]
        scores, t = [], 0  # t: index of the operation the next checkable step should perform
        for step in steps:
            rhs = parse_step(step)
            if rhs is None:
                scores.append(0)
                continue
            try:
                new = [eval_expr(rhs, env) for env in envs]
            except (StepError, RecursionError):
                new = None
            if new is not None:
                for env, y in zip(envs, new):
                    env["y"] = y
            scores.append(1 if new is not None and t < len(ref) and new == ref[t] else -1)
            t += 1
        return scores
