"""The completion format every task shares, and its parser.

A completion is a reasoning block of one step per line, then the final answer:

    <think>
    12+7=19
    19*3=57
    </think>
    <answer>57</answer>

`R_format` (docs/design.md) is 1 when this shape holds: reasoning present, step by step, finished before
the answer. Code tasks put the program inside <answer> (optionally in a ```python fence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
MARKERS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)

_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_]*\s*\n(.*?)\n?\s*```\s*$", re.S)


@dataclass(frozen=True)
class ParsedCompletion:
    steps: list[str]  # non-empty lines of the reasoning block, in order
    answer: str | None  # text inside <answer>...</answer>, stripped; None if absent or unclosed
    format_ok: bool  # reasoning block present, >= 1 step, closed before a closed answer block


def parse_completion(text: str) -> ParsedCompletion:
    """Split a completion into steps and answer.

    >>> p = parse_completion("<think>\\n1+2=3\\n3*2=6\\n</think>\\n<answer>6</answer>")
    >>> p.steps, p.answer, p.format_ok
    (['1+2=3', '3*2=6'], '6', True)
    >>> parse_completion("<answer>6</answer>").format_ok
    False
    """
    t_open, t_close = text.find(THINK_OPEN), text.find(THINK_CLOSE)
    a_open = text.find(ANSWER_OPEN)
    a_close = text.find(ANSWER_CLOSE, a_open + 1) if a_open >= 0 else -1

    answer = text[a_open + len(ANSWER_OPEN) : a_close].strip() if 0 <= a_open < a_close else None
    steps: list[str] = []
    if 0 <= t_open < t_close:
        body = text[t_open + len(THINK_OPEN) : t_close]
        steps = [line.strip() for line in body.split("\n") if line.strip()]

    format_ok = (
        t_open >= 0
        and not text[:t_open].strip()
        and t_open < t_close
        and len(steps) >= 1
        and answer is not None
        and t_close < a_open
        and text.count(THINK_OPEN) == 1
        and text.count(ANSWER_OPEN) == 1
        and not text[a_close + len(ANSWER_CLOSE) :].strip()
    )
    return ParsedCompletion(steps=steps, answer=answer, format_ok=format_ok)


def strip_code_fence(answer: str) -> str:
    """Program text from an answer block, without a surrounding ```python fence if present."""
    m = _FENCE.match(answer)
    return m.group(1) if m else answer


def render_completion(steps: list[str], answer: str) -> str:
    """Inverse of `parse_completion`: how a reference solution is written."""
    body = "\n".join(steps)
    return f"{THINK_OPEN}\n{body}\n{THINK_CLOSE}\n{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
