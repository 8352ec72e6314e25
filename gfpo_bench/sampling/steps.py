"""Find the token span of each reasoning step in a completion.

A step is one non-empty line inside <think> ... </think>; its span runs from its first token to the
newline that ends it (inclusive), so cutting a path at a step boundary keeps whole steps. Works for
any tokenizer: tokens are decoded one by one and matched by character offsets.
"""

from __future__ import annotations

import weakref

from gfpo_bench.tasks.format import THINK_CLOSE, THINK_OPEN


def step_spans_from_pieces(pieces: list[str]) -> list[tuple[int, int]]:
    """Token spans [start, end) of each step, relative to the completion, from per-token text.

    >>> step_spans_from_pieces(["<think>", "\\n", "1", "+", "2", "=", "3", "\\n", "</think>"])
    [(2, 8)]
    """
    text = "".join(pieces)
    t_open, t_close = text.find(THINK_OPEN), text.find(THINK_CLOSE)
    if t_open < 0:
        return []
    body_start = t_open + len(THINK_OPEN)
    body_end = t_close if t_close > t_open else len(text)
    # char offset where each token starts: token i covers [starts[i], starts[i+1])
    starts, pos = [], 0
    for piece in pieces:
        starts.append(pos)
        pos += len(piece)
    starts.append(pos)

    def token_at(char: int) -> int:  # token containing character `char`
        lo, hi = 0, len(pieces) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if starts[mid] <= char:
                lo = mid
            else:
                hi = mid - 1
        return lo

    spans, line_start = [], body_start
    while line_start < body_end:
        newline = text.find("\n", line_start, body_end)
        line_end = newline + 1 if newline >= 0 else body_end  # include the newline
        if text[line_start:line_end].strip():
            first = line_start + (len(text[line_start:line_end]) - len(text[line_start:line_end].lstrip()))
            start, end = token_at(first), token_at(line_end - 1) + 1
            if not spans or start >= spans[-1][1]:
                spans.append((start, end))
        line_start = line_end
    return spans


# tokenizer -> {token id: its text decoded alone}; a token's piece never changes, and decoding one id
# at a time through the tokenizer costs more than the rest of building a batch of rollouts
_PIECES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def token_pieces(tokenizer, ids: list[int]) -> list[str]:
    """The text of each token decoded on its own (what step spans are matched against)."""
    known = _PIECES.setdefault(tokenizer, {})
    new = [i for i in dict.fromkeys(ids) if i not in known]
    if new:
        known.update(zip(new, tokenizer.batch_decode([[i] for i in new], skip_special_tokens=False)))
    return [known[i] for i in ids]


def step_spans(tokenizer, completion_ids: list[int]) -> list[tuple[int, int]]:
    return step_spans_from_pieces(token_pieces(tokenizer, completion_ids))
