"""A step verifier for arithmetic: check every `a op b = c` written in one reasoning step.

This is the rule-based process signal r_t in {-1, 0, +1} of docs/design.md's `R_process`: +1 if every
equation found in the step is arithmetically right, -1 if any is wrong, 0 if none is checkable. It
plays the role that GSM8K's calculator annotations `<<48/2=24>>` play in Cobbe et al. (2021): the
arithmetic a step claims can be recomputed exactly. Unlike a learned process reward model
(Lightman et al. 2023) it says nothing about whether the step is *useful*, only whether its
arithmetic is true.

How it reads a step (conservatively: when in doubt, a side is not checked):
- `+ - * /`, `x`/`X` between two numbers, `×`, `·`, `÷`, `\\times`, `\\cdot`, `\\div`, parentheses,
  decimals, thousands commas (`1,000`), `$`, `%` (= /100), mixed numbers (`1 and 1/4`), a Unicode
  minus, and one unit word between a number and an operator (`5 kg * 3 = 15 kg`) are understood.
- Chains `a + b + c = d` and `x = a * b = c` are split at `=`; each adjacent pair of complete sides,
  at least one holding an operator, is one equation.
- A side touching a variable, exponent, subscript or LaTeX command (`2x`, `3^2`, `a_1`, `\\frac`) is
  incomplete and not checked, so algebra is uncheckable (0), never wrong (-1).
- Arithmetic is exact (`fractions.Fraction`, a tiny recursive-descent parser; no `eval`). The one
  tolerance: a result written as a decimal literal may be rounded to its own precision
  (`10/3 = 3.33` is right, `10/3 = 3.3` is right, `10/3 = 3.4` is wrong, `10/3 = 3` is wrong); and
  a lone percentage result may be the computed number itself (`90/300*100 = 30%`).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple

_CALC = re.compile(r"<<[^<>]*>>")
_MIXED = re.compile(r"\b(\d+) and (\d+)/(\d+)\b")  # "1 and 1/4" -> (1+1/4)
_LATEX_OPS = (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("\\%", "%"), ("\\$", "$"), ("{,}", ","))
_UNICODE_OPS = str.maketrans(
    {"×": "*", "·": "*", "÷": "/", "\u2212": "-", "\u2013": "-", "¼": "(1/4)", "½": "(1/2)", "¾": "(3/4)"}
)
_TOKEN = re.compile(
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?|\.\d+%?)"
    r"|(?P<op>[-+*/])|(?P<lp>\()|(?P<rp>\))|(?P<eq>=)|(?P<word>[A-Za-z]+)|(?P<space>\s+)|(?P<other>.)"
)
_OK_BEFORE = frozenset(",:;.!?\"'")  # punctuation that may precede an expression after a space
_OK_AFTER = frozenset(".,;:!?\"'")  # punctuation that may end an expression (then space or end)
# words that tie a side to a number beyond it ("10% of 150 + 5", "= 3 times 4"): that side is not whole
_GLUE_LEFT = frozenset("of x times plus minus by per over divided into than".split())
_GLUE_RIGHT = frozenset("x times plus minus by over divided".split())
# words after a number that are not its unit ("39 and -11 + 2 = ..." must not read as 39 - 11 + 2)
_NOT_UNITS = _GLUE_LEFT | frozenset(
    "and or so then is are was were be to but thus hence because since gives equals which that we it "
    "get gets have has with for in on at the".split()
)


def strip_calc_annotations(text: str) -> str:
    """Remove GSM8K calculator annotations.

    >>> strip_calc_annotations("Natalia sold 48/2 = <<48/2=24>>24 clips in May.")
    'Natalia sold 48/2 = 24 clips in May.'
    """
    return _CALC.sub("", text)


def _tokens(text: str) -> list[tuple[str, str, int, int]]:
    return [(m.lastgroup or "other", m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _value(num: str) -> Fraction:
    pct = num.endswith("%")
    v = Fraction(num.rstrip("%").replace(",", ""))
    return v / 100 if pct else v


class _Parser:
    """expr := term (('+'|'-') term)*; term := unary (('*'|'/') unary)*; unary := '-' unary | atom."""

    def __init__(self, toks: list[tuple[str, str]]):
        self.toks, self.i = toks, 0

    def parse(self) -> Fraction | None:
        try:
            v = self.expr()
        except (ValueError, ZeroDivisionError, IndexError, RecursionError):
            return None
        return v if self.i == len(self.toks) else None

    def peek(self) -> str:
        return self.toks[self.i][1] if self.i < len(self.toks) else ""

    def expr(self) -> Fraction:
        v = self.term()
        while self.peek() in ("+", "-"):
            self.i += 1
            v = v + self.term() if self.toks[self.i - 1][1] == "+" else v - self.term()
        return v

    def term(self) -> Fraction:
        v = self.unary()
        while self.peek() in ("*", "/"):
            self.i += 1
            v = v * self.unary() if self.toks[self.i - 1][1] == "*" else v / self.unary()
        return v

    def unary(self) -> Fraction:
        if self.peek() in ("-", "+"):
            self.i += 1
            return -self.unary() if self.toks[self.i - 1][1] == "-" else self.unary()
        kind, text = self.toks[self.i]
        self.i += 1
        if kind == "num":
            return _value(text)
        if kind == "lp":
            v = self.expr()
            if self.peek() != ")":
                raise ValueError("unbalanced")
            self.i += 1
            return v
        raise ValueError(f"unexpected {text!r}")


def _normalise(step: str) -> str:
    s = strip_calc_annotations(step).translate(_UNICODE_OPS)
    s = _MIXED.sub(r"(\1+\2/\3)", s)
    for latex, plain in _LATEX_OPS:
        s = s.replace(latex, plain)
    return s.replace("$", "")


class _Segment(NamedTuple):
    toks: list[tuple[str, str]]  # (kind, text), spaces and unit words dropped
    left_ok: bool  # the first side is not glued to text before it
    right_ok: bool  # the last side is not glued to text after it
    after_word: bool  # a word precedes the run ("Week 4 = 48 + 48": 4 is a label, not a claim)


def _segments(text: str) -> list[_Segment]:
    """Maximal runs of arithmetic tokens in a normalised step."""
    toks = _tokens(text)
    kinds = [k for k, *_ in toks]

    def near(j: int, step: int) -> int:  # index of the next non-space token (may be out of range)
        j += step
        while 0 <= j < len(toks) and kinds[j] == "space":
            j += step
        return j

    def kind(j: int) -> str:
        return kinds[j] if 0 <= j < len(toks) else ""

    def is_unit(j: int) -> bool:  # "5 kg", a plain word after a number and a space
        a = near(j, -1)
        word = toks[j][1]
        return word.lower() not in _NOT_UNITS and len(word) >= 2 and kind(a) == "num" and a < j - 1

    for j in range(len(toks)):  # "3 x 4", "60 minutes x 2/3": times between two operands
        if kinds[j] == "word" and toks[j][1] in ("x", "X"):
            a, b = near(j, -1), near(j, 1)
            left = kind(a) in ("num", "rp") or (kind(a) == "word" and is_unit(a))
            if left and kind(b) in ("num", "lp"):
                toks[j], kinds[j] = ("op", "*", *toks[j][2:]), "op"
    arith = [k in ("num", "op", "lp", "rp", "eq") for k in kinds]
    for j in range(len(toks)):  # a unit word is skipped when an operator follows it
        if kinds[j] == "word" and is_unit(j):
            b = near(j, 1)
            after_op = kind(near(near(j, -1), -1)) == "op"  # "96 cookies / 6 people = 16"
            arith[j] = kind(b) == "op" or (kind(b) == "eq" and after_op)
    out = []
    j = 0
    while j < len(toks):
        if not arith[j] or kinds[j] == "word":
            j += 1
            continue
        start = j
        while j < len(toks) and (arith[j] or kinds[j] == "space"):
            j += 1
        end = j
        while kinds[end - 1] in ("space", "word"):
            end -= 1
        seg = [(k, t) for k, t, *_ in toks[start:end] if k not in ("space", "word")]
        before = text[: toks[start][2]].rstrip()
        left, right = _left_ok(text, toks[start]), _right_ok(text, toks[end - 1][3])
        out.append(_Segment(seg, left, right, before[-1:].isalpha()))
    return out


def _left_ok(text: str, first: tuple[str, str, int, int]) -> bool:
    kind, tok, pos, _ = first
    if kind == "op" and tok != "-":
        return False
    if pos > 0 and not text[pos - 1].isspace():
        return False
    before = text[:pos].rstrip()
    if not before:
        return True
    if before[-1] in ",." and before[-2:-1].isdigit():  # "14, 400": a broken number
        return False
    if tok == "-":  # unary minus only at a clear start, never after a word or number
        return before[-1] in ",:;"
    if before[-1].isalpha():
        word = re.split(r"[^A-Za-z]", before)[-1]
        if len(word) == 1 and word not in ("a", "A", "I"):  # a variable: "x 3 + 4" is not a claim
            return False
        glued = before[: -len(word)].rstrip()[-1:]
        return word.lower() not in _GLUE_LEFT or not (glued.isdigit() or glued in ("%", ")"))
    return before[-1] in _OK_BEFORE


def _right_ok(text: str, end: int) -> bool:
    after = text[end:]
    if not after or after[0].isspace():
        rest = after.lstrip()
        word = re.match(r"[A-Za-z]+", rest)
        if word:
            return word.group().lower() not in _GLUE_RIGHT
        return not rest or rest[0] in _OK_AFTER
    return after[0] in _OK_AFTER and (len(after) == 1 or after[1].isspace())


def _literal(side: list[tuple[str, str]]) -> str | None:
    if len(side) == 1 and side[0][0] == "num":
        return side[0][1]
    return None


def _has_binary_op(side: list[tuple[str, str]]) -> bool:
    return any(k == "op" and i > 0 and side[i - 1][0] in ("num", "rp") for i, (k, _) in enumerate(side))


def _check_pair(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> bool | None:
    va, vb = _Parser(a).parse(), _Parser(b).parse()
    if va is None or vb is None:
        return None
    if va == vb:
        return True
    for lit, computed in ((_literal(a), vb), (_literal(b), va)):
        if lit is None:
            continue
        value = _value(lit)
        if lit.endswith("%") and computed == value * 100:  # "90/300*100 = 30%"
            return True
        if "." in lit:  # a decimal result may be rounded to its own precision
            places = len(lit.rstrip("%").split(".")[1]) + (2 if lit.endswith("%") else 0)
            if abs(value - computed) <= Fraction(1, 2 * 10**places):
                return True
    return False


def equation_results(step: str) -> list[bool]:
    """Truth of each checkable equation in a step, in order.

    >>> equation_results("48/2 = 24 and 24 + 48 = 72, so x = 3 * 4 = 13")
    [True, True, False]
    >>> equation_results("Then 2x + 3 = 7 and 3^2 = 9.")
    []
    """
    results: list[bool] = []
    for seg in _segments(_normalise(step)):
        sides: list[list[tuple[str, str]]] = [[]]
        for k, t in seg.toks:
            if k == "eq":
                sides.append([])
            else:
                sides[-1].append((k, t))
        if len(sides) < 2:
            continue
        complete = [bool(s) for s in sides]
        complete[0] = complete[0] and seg.left_ok and not (seg.after_word and _literal(sides[0]))
        complete[-1] = complete[-1] and seg.right_ok
        for i in range(len(sides) - 1):
            a, b = sides[i], sides[i + 1]
            if not (complete[i] and complete[i + 1]):
                continue
            if not (_has_binary_op(a) or _has_binary_op(b)):
                continue  # "24 = 24" or "x = 5" claims no arithmetic
            ok = _check_pair(a, b)
            if ok is not None:
                results.append(ok)
    return results


def check_equation_step(step: str) -> int:
    """+1 if every equation in the step is right, -1 if any is wrong, 0 if none is checkable.

    >>> check_equation_step("She earns $12 x 3 = $36 a day.")
    1
    >>> check_equation_step("So 1,000 - 250 = 800 remain.")
    -1
    >>> check_equation_step("(2 + 3) * 4 = 20, and 20% * 50 = 10")
    1
    >>> check_equation_step("She has 5 apples.")
    0
    """
    results = equation_results(step)
    if not results:
        return 0
    return 1 if all(results) else -1
