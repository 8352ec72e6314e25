"""Final-answer checker (math-verify based) and the arithmetic step verifier."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from gfpo_bench.checkers import answers
from gfpo_bench.checkers.answers import CHECK_STATS, answers_match, extract_final_answer
from gfpo_bench.checkers.equations import check_equation_step, equation_results, strip_calc_annotations
from gfpo_bench.tasks.format import parse_completion

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

SAME = [
    ("1/2", "\\frac{1}{2}"),
    ("0.5", "\\frac{1}{2}"),
    ("\\dfrac{1}{2}", "0.5"),
    ("\\boxed{18}", "18"),
    ("$\\boxed{\\frac{3}{4}}$", "0.75"),
    ("5 \\text{ cm}", "5"),
    ("5", "5\\text{ cm}"),
    ("1,000", "1000"),
    ("1000", "1,000"),
    ("10080", "10,\\!080"),
    ("\u22123", "-3"),  # Unicode minus
    ("-\\frac{1}{2}", "-0.5"),
    ("18 dollars", "18"),
    ("\\$18.00", "18"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("\\pi/2", "\\frac{\\pi}{2}"),
    ("2+\\sqrt{3}", "\\sqrt{3}+2"),
    ("50\\%", "50"),
    ("x = 5", "5"),
    ("90", "90^\\circ"),
    ("(1,2)", "(1, 2)"),
    ("7, 5, 3", "3, 5, 7"),
    ("(C)", "\\text{(C)}"),
    ("52_{8}", "52_8"),
    ("\\boxed{52_{8}}", "52_8"),
    ("18.", "18"),
]

DIFFERENT = [
    ("17", "18"),
    ("3", "-3"),
    ("-3", "3"),
    ("0.33", "\\frac{1}{3}"),
    ("0.5", "50\\%"),
    ("\\sqrt{2}", "2"),
    ("18 apples", "19"),
    ("2 and 3", "2"),  # not a number with a unit
    ("1000", "100"),
    ("52_10", "52_8"),  # math-verify alone drops the base subscript
    ("42", "52_8"),  # right value, wrong base
    ("B", "\\text{(E)}"),
    ("(1,2)", "[1,2]"),
    ("", "18"),
    (None, "18"),
]


@pytest.mark.parametrize(("pred", "ref"), SAME)
def test_equivalent_answers_match(pred: str, ref: str) -> None:
    assert answers_match(pred, ref)


@pytest.mark.parametrize(("pred", "ref"), DIFFERENT)
def test_different_answers_do_not_match(pred: str | None, ref: str) -> None:
    assert not answers_match(pred, ref)


def test_checker_works_off_the_main_thread() -> None:
    # math-verify's signal-based timeout raises ValueError off the main thread unless disabled
    results: list[bool] = []
    errors_before, unsafe_before = CHECK_STATS["errors"], CHECK_STATS["unsafe"]

    def work() -> None:
        results.append(answers_match("0.5", "\\frac{1}{2}"))
        results.append(answers_match("\\boxed{-\\frac{1}{2}}", "-0.5"))
        # no timeout can stop sympy off the main thread: a power tower is refused, not evaluated
        results.append(answers_match("9^{9^{9^{9}}}", "1"))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=60)
    assert results == [True, True, False]
    assert CHECK_STATS["errors"] == errors_before
    assert CHECK_STATS["unsafe"] == unsafe_before + 1


def test_checker_swallows_and_counts_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> list:
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(answers, "parse", boom)
    before = CHECK_STATS["errors"]
    assert answers_match("0.5", "\\frac{1}{2}") is False
    assert CHECK_STATS["errors"] == before + 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>\nx\n</think>\n<answer>7</answer>", "7"),
        ("so $\\boxed{1}$ or rather $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("She pays 2*9=18 dollars.\n#### 18", "18"),
        ("Therefore, the answer is 42.", "42"),
        ("3 apples and then 1,250 more", "1,250"),
        ("no digits", None),
    ],
)
def test_extract_final_answer(text: str, expected: str | None) -> None:
    assert extract_final_answer(text, parse_completion(text).answer) == expected


def test_math500_boxed_answers_agree_with_answer_field() -> None:
    path = DATA / "math500" / "test.jsonl"
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    bad = [
        r["unique_id"]
        for r in rows
        if not answers_match(
            extract_final_answer(r["solution"], parse_completion(r["solution"]).answer), r["answer"]
        )
    ]
    assert bad == []


# --- equation step verifier -------------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    [
        "Natalia sold 48/2 = 24 clips in May.",
        "She earns $12 x 3 = $36 a day.",
        "2 × 3 ÷ 4 = 1.5",
        "(2 + 3) * 4 = 20",
        "So 1,000 - 250 = 750 remain.",
        "Each gets 10/3 = 3.33 pounds.",  # a rounded decimal result
        "x = 3 * 4 = 12",
        "$2 \\cdot 3 = 6$ and $-3 + 5 = 2$",
        "20% * 50 = 10",
        "5 kg * 3 = 15 kg",
        "It takes 17/3 = 5 and 2/3 loads.",  # a mixed number
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.",  # annotation left in
    ],
)
def test_right_arithmetic_scores_plus_one(step: str) -> None:
    assert check_equation_step(step) == 1


@pytest.mark.parametrize(
    "step",
    [
        "Natalia sold 48/2 = 25 clips in May.",
        "So 1,000 - 250 = 800 remain.",
        "10/3 = 3",  # an integer is not a rounding of 3.33
        "10/3 = 3.4",
        "2 + 2 = 4 and 3 + 3 = 7",  # one wrong equation is enough
        "3 x 4 x 5 = 50",
        "x = 3 * 4 = 13",
    ],
)
def test_wrong_arithmetic_scores_minus_one(step: str) -> None:
    assert check_equation_step(step) == -1


@pytest.mark.parametrize(
    "step",
    [
        "She has 5 apples.",
        "2x + 3 = 7",
        "x^2 + 2 = 6",
        "2 ^ 3 + 1 = 9",
        "a_1 + 2 = 5",
        "$\\frac{6}{2} = 3$",
        "10 = 10",
        "1/0 = 5",
        "__import__('os').system('true') = 0",
        "3:00 + 2 = 5:00",
    ],
)
def test_uncheckable_steps_score_zero(step: str) -> None:
    assert check_equation_step(step) == 0


def test_chains_check_each_adjacent_pair() -> None:
    assert equation_results("We have 2 + 3 = 5 = 10/2") == [True, True]
    # "Week 4" is a label: "4 = 48 + 48" is not a claim, "48 + 48 = 96" is
    assert equation_results("Week 3 + Week 4 = 48 + 48 = 96 hours") == [True]
    assert equation_results("4080 + 4080 / 2 = 4000 + 2040 = 6120") == [False, False]


def test_strip_calc_annotations() -> None:
    assert strip_calc_annotations("48+24 = <<48+24=72>>72 clips") == "48+24 = 72 clips"


def test_gsm8k_reference_steps_are_almost_all_verified_right() -> None:
    path = DATA / "gsm8k" / "test.jsonl"
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path}")
    scores = []
    for line in path.read_text().splitlines():
        worked = json.loads(line)["answer"].split("####")[0]
        scores += [check_equation_step(strip_calc_annotations(s)) for s in worked.split("\n") if s.strip()]
    n = len(scores)
    # measured on 4,819 test steps: 3,918 +1, 896 zeros, 5 -1: two real slips in the references
    # ("$32 - $20 = $300", "364 / 4 = 273") and three loose notations ("his 1 teacher + 1 himself = 27")
    assert scores.count(1) / n > 0.75
    assert scores.count(-1) / n < 0.005
