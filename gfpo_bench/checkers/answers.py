"""Final-answer checking for math tasks, built on HuggingFace's `math-verify`.

`answers_match(pred, ref)` decides whether a model's final answer equals the reference. Both sides go
through the same light normalisation, are parsed by `math_verify.parse` as LaTeX math (wrapped in
`$...$`) and compared by `math_verify.verify`, which handles fractions (`1/2`, `\\frac{1}{2}`, `0.5`),
`\\boxed{}`, `\\dfrac`, `\\sqrt`, `\\pi`, thousands separators (`1,000`, `10,\\!080`), LaTeX units
(`5 \\text{ cm}`, `90^\\circ`), sets/tuples/intervals and symbolic equality. This follows the
grading used for MATH-500 in "Let's Verify Step by Step" (Lightman et al. 2023) as re-implemented
by math-verify, rather than exact string match.

Where it departs from calling math-verify directly:
- A Unicode minus (U+2212), `$`/`\\$` signs, a trailing full stop and plain-text units after a
  number (`18 dollars`, `7 apples`) are removed first; math-verify reads `18 dollars` as the product
  `18*d*o*l*l*a*r*s`.
- math-verify's timeouts use `signal.alarm`, which only works on the main thread. Off the main
  thread we pass `parsing_timeout=None, timeout_seconds=None` (no timeout) instead of crashing; as
  there is then nothing to stop sympy, answers that could run away (a power tower `9^{9^{9}}`, or
  over `MAX_ANSWER_CHARS`) are rejected unparsed there (False, counted as "unsafe").
- No exception ever escapes: a failure to parse or compare returns False and is counted in
  `CHECK_STATS` (keys "errors", "calls").
- A number in an explicit base (`52_8`, `4210_{5}`) must be given in the same base with the same
  value; math-verify would drop the subscript and call `52_8` equal to `52_10`.
- Percentages follow math-verify: `50%` equals `50` (the `%` is treated as a unit), but `0.5` does
  not equal `50\\%`.

`extract_final_answer(text, answer_block)` is a fallback for free-form outputs: the caller's parsed
`<answer>` block if there is one (`tasks/format.parse_completion`; this module stays a leaf and does
not parse the shared format itself), else the last `\\boxed{}`, GSM8K's `#### 18`, "the answer is
...", else the last number. Training rewards never use it: they read the answer block alone, so the
format reward stays meaningful.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter

from math_verify import parse, verify
from math_verify.errors import TimeoutException

log = logging.getLogger(__name__)

PARSE_TIMEOUT_S = 5  # per parse / per comparison, main thread only
MAX_ANSWER_CHARS = 1000  # off the main thread (no timeout), longer answers are not parsed
CHECK_STATS: Counter[str] = Counter()  # "calls"; "errors": parse/compare raised; "unsafe": see above
_stats_lock = threading.Lock()

_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?|[-+]?\.\d+%?"
# "18 dollars", "7.5 apples per box." -> the number alone (plain words only, no LaTeX)
_NUMBER_THEN_WORDS = re.compile(rf"^({_NUMBER})\s+([A-Za-z][A-Za-z ]*)\.?$")
# words that make "2 and 3" an expression, not a unit
_NOT_UNITS = frozenset({"and", "or", "to", "plus", "minus", "times", "over", "divided", "by", "squared"})


def _bump(key: str) -> None:
    with _stats_lock:
        CHECK_STATS[key] += 1


def normalize_answer(text: str) -> str:
    """Light textual clean-up before math-verify sees an answer.

    >>> normalize_answer("−3")
    '-3'
    >>> normalize_answer(" \\\\$18 dollars. ")
    '18'
    >>> normalize_answer("\\\\boxed{\\\\frac{1}{2}}")
    '\\\\frac{1}{2}'
    """
    s = text.strip().replace("\u2212", "-")
    s = s.replace("\\$", "").replace("$", "").strip()
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1].rstrip()
    if s.startswith(("\\boxed", "\\fbox")):  # "\\boxed{52_8}" -> "52_8" for the checks below
        brace = s.find("{")
        if brace >= 0 and _closing_brace(s, brace) == len(s) - 1:
            s = s[brace + 1 : -1].strip()
    m = _NUMBER_THEN_WORDS.match(s)
    if m and not _NOT_UNITS.intersection(m.group(2).lower().split()):
        return m.group(1)
    return s


_BASE_NUMBER = re.compile(r"^\(?([0-9A-Za-z]+)\)?_\{?(\d+)\}?$")  # 52_8, 4210_{5}, (1011)_2


def _base_value(s: str) -> int | None:
    """Value of a number written in an explicit base, e.g. `52_8` -> 42; None if not that shape."""
    m = _BASE_NUMBER.match(s.replace(" ", ""))
    if not m or not 2 <= int(m.group(2)) <= 36:
        return None
    try:
        return int(m.group(1), int(m.group(2)))
    except ValueError:
        return None


_POWER_TOWER = re.compile(r"\^\s*\{[^}]*\^|\^\s*\d+\s*\^|\*\*[^*]*\*\*")


def _runaway(s: str) -> bool:
    """Could sympy spend unbounded time on this? (Only matters when no timeout can stop it.)"""
    return len(s) > MAX_ANSWER_CHARS or bool(_POWER_TOWER.search(s))


def answers_match(pred: str | None, ref: str) -> bool:
    """True if the predicted final answer equals the reference answer.

    >>> answers_match("0.5", "\\\\frac{1}{2}"), answers_match("1,000", "1000"), answers_match("17", "18")
    (True, True, False)
    """
    if pred is None:
        return False
    _bump("calls")
    p, r = normalize_answer(pred), normalize_answer(ref)
    if not p or not r:
        return False
    if p == r:
        return True
    base_ref = _base_value(r)
    if base_ref is not None:  # math-verify drops the subscript: 52_8 would equal 52_10
        m_pred, m_ref = _BASE_NUMBER.match(p.replace(" ", "")), _BASE_NUMBER.match(r.replace(" ", ""))
        return bool(m_pred and m_pred.group(2) == m_ref.group(2) and _base_value(p) == base_ref)
    limit = PARSE_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    if limit is None and (_runaway(p) or _runaway(r)):
        _bump("unsafe")
        return False
    try:
        gold = parse(f"${r}$", parsing_timeout=limit)
        target = parse(f"${p}$", parsing_timeout=limit)
        if not gold or not target:
            return False
        return bool(verify(gold, target, timeout_seconds=limit))
    except (Exception, TimeoutException):  # TimeoutException is a BaseException
        _bump("errors")
        log.debug("answer check failed: pred=%r ref=%r", pred[:200], ref[:200], exc_info=True)
        return False


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced.

    >>> last_boxed("so $\\\\boxed{1}$ or rather $\\\\boxed{\\\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    brace = text.find("{", start) if start >= 0 else -1
    end = _closing_brace(text, brace) if brace >= 0 else None
    return None if end is None else text[brace + 1 : end].strip()


def _closing_brace(text: str, brace: int) -> int | None:
    """Index of the `}` matching the `{` at `brace`; None if unbalanced."""
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


_HASHES = re.compile(r"####\s*(.+)")
_ANSWER_IS = re.compile(r"answer is[:\s]*\$?([^\n$]+?)\$?\s*(?:\.\s*)?$", re.I | re.M)
_ANY_NUMBER = re.compile(_NUMBER)


def extract_final_answer(text: str, answer_block: str | None) -> str | None:
    """Best-effort final answer of a free-form output (a fallback; training never uses it).

    `answer_block` is the text's `<answer>` block as the caller parsed it
    (`parse_completion(text).answer`), or None. Order: that block, last `\\boxed{}`, `#### X`
    (GSM8K), "the answer is X", last number.

    >>> extract_final_answer("<think>\\nx\\n</think>\\n<answer>7</answer>", "7")
    '7'
    >>> extract_final_answer("She pays 2*9=18 dollars.\\n#### 18", None)
    '18'
    >>> extract_final_answer("So we get $\\\\boxed{\\\\dfrac{3}{4}}$.", None)
    '\\\\dfrac{3}{4}'
    >>> extract_final_answer("3 apples and then 1,250 more.", None)
    '1,250'
    >>> extract_final_answer("no digits here", None) is None
    True
    """
    if answer_block:
        return answer_block
    boxed = last_boxed(text)
    if boxed:
        return boxed
    hashes = _HASHES.findall(text)
    if hashes:
        return hashes[-1].strip()
    stated = _ANSWER_IS.findall(text)
    if stated:
        return stated[-1].strip()
    numbers = _ANY_NUMBER.findall(text.replace("\u2212", "-"))
    return numbers[-1] if numbers else None
