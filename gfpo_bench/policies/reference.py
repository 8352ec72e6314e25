"""Reference policies: the dataset's own solutions, intact or deliberately broken.

They prove the harness rather than a model: `ReferencePolicy` must score (close to) 100% on every
benchmark and `CorruptedReferencePolicy` (close to) 0%. A checker that rejects the references, or
accepts their corruptions, is broken; a benchmark reference that fails is either a data error or a
harness bug, and is listed by name in the tests.

Corruption keeps the reasoning block and changes only the answer, so the format reward still sees a
well-formed completion and only correctness should drop:
- math: the first integer in the answer is shifted by a seeded non-zero offset (`18` -> `23`,
  `\\frac{1}{2}` -> `\\frac{8}{2}`, `864 \\mbox{ inches}^2` -> `869 ...`: units are not compared,
  so the last integer would not do); an answer without digits becomes a seeded integer.
- code: every top-level function of the program is redefined at the end to return None or to
  raise (seeded per problem), so the tests call a function that no longer computes anything.
"""

from __future__ import annotations

import random
import re

from gfpo_bench.tasks.format import parse_completion, render_completion, strip_code_fence
from gfpo_bench.types import Problem

_FIRST_INT = re.compile(r"\d+")
_TOP_LEVEL_DEF = re.compile(r"^def\s+(\w+)\s*\(", re.M)


class ReferencePolicy:
    """Answers every problem with its reference solution."""

    def complete(self, problems: list[Problem]) -> list[str]:
        return [p.solution for p in problems]


def corrupt_math_answer(answer: str, rng: random.Random) -> str:
    """A different value: the first integer shifted by 1..9, or an integer if there are no digits.

    >>> corrupt_math_answer("18", random.Random(0))
    '25'
    >>> corrupt_math_answer("\\\\text{Evelyn}", random.Random(0))
    '7'
    """
    shift = rng.randint(1, 9)
    m = _FIRST_INT.search(answer)
    if m is None:
        return str(shift)
    return answer[: m.start()] + str(int(m.group()) + shift) + answer[m.end() :]


def corrupt_program(program: str, rng: random.Random) -> str:
    """The program with each top-level function redefined to return None or raise.

    >>> print(corrupt_program("def f(x):\\n    return x", random.Random(1)))
    def f(x):
        return x
    <BLANKLINE>
    def f(*args, **kwargs):
        return None
    """
    names = list(dict.fromkeys(_TOP_LEVEL_DEF.findall(program)))
    body = "return None" if rng.random() < 0.5 else 'raise RuntimeError("corrupted reference")'
    if not names:  # nothing to redefine: make the whole program fail
        return program + "\n\nraise SystemExit(1)"
    broken = [f"def {n}(*args, **kwargs):\n    {body}" for n in names]
    return program + "\n\n" + "\n\n".join(broken)


class CorruptedReferencePolicy:
    """Answers with each reference made wrong (see module docstring); deterministic per (seed, uid)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def corrupt(self, problem: Problem) -> str:
        parsed = parse_completion(problem.solution)
        if parsed.answer is None:
            raise ValueError(f"{problem.uid}: reference solution has no answer block")
        rng = random.Random(f"{self.seed}:{problem.uid}")
        if problem.tests:  # a code task
            answer = corrupt_program(strip_code_fence(parsed.answer), rng)
        else:
            answer = corrupt_math_answer(parsed.answer, rng)
        return render_completion(parsed.steps, answer)

    def complete(self, problems: list[Problem]) -> list[str]:
        return [self.corrupt(p) for p in problems]
