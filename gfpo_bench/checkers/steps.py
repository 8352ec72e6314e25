"""Step-level verdicts over a whole path: where the step verifier first marks it wrong.

The scores are the per-step process signal r_t in {-1, 0, +1} (`checkers/equations.py` for
arithmetic; docs/design.md's `R_process`). GFPO's claim is that its pairs diverge at the worse path's
first wrong step: the branch sampler branches there and the pair analytics measure how often it holds.
"""

from __future__ import annotations


def first_wrong_step(scores: list[int]) -> int:
    """Index of the first step the verifier marks wrong (-1 if none).

    >>> first_wrong_step([1, 1, -1, -1]), first_wrong_step([1, 0])
    (2, -1)
    """
    return next((t for t, s in enumerate(scores) if s < 0), -1)
