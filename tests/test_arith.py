"""The embedded arith task: deterministic, disjoint splits, difficulty knobs, a step verifier."""

from __future__ import annotations

import pytest

from gfpo_bench.tasks.arith import ArithTask
from gfpo_bench.tasks.format import parse_completion


def test_generation_is_deterministic_and_splits_are_disjoint():
    a, b = ArithTask(seed=3, n_val=200), ArithTask(seed=3, n_val=200)
    assert [p.question for p in a.problems("val")] == [p.question for p in b.problems("val")]
    qs = {s: {p.question for p in a.problems(s)} for s in ("train", "val", "test")}
    assert not (qs["train"] & qs["val"]) and not (qs["train"] & qs["test"]) and not (qs["val"] & qs["test"])
    assert len(qs["val"]) == 200 and len(qs["test"]) == 500


def test_reference_solutions_score_correct_with_every_step_verified():
    t = ArithTask(ops="+-*", max_operands=5, digits=2)
    for p in t.problems("val")[:50]:
        steps = parse_completion(p.solution).steps
        assert t.score([p], [p.solution])[0].correct
        assert t.verify_steps(p, steps) == [1] * len(steps)


def test_difficulty_knobs():
    t = ArithTask(min_operands=4, max_operands=4, digits=3, ops="*")
    p = t.problems("val")[0]
    assert len(p.meta["nums"]) == 4 and set(p.meta["ops"]) == {"*"}
    assert all(0 <= x <= 999 for x in p.meta["nums"])
    with pytest.raises(ValueError, match="min_operands"):
        ArithTask(min_operands=1)
    with pytest.raises(ValueError, match="ops"):
        ArithTask(ops="+^")


def test_verifier_pins_the_wrong_step():
    t = ArithTask()
    p = next(p for p in t.problems("val") if len(p.meta["ops"]) == 3)
    steps = parse_completion(p.solution).steps
    a, rest = steps[1].split("=")
    bad = steps[:1] + [f"{a}={int(rest) + 1}"] + steps[2:]
    assert t.verify_steps(p, bad) == [
        1,
        -1,
        1,
    ]  # only the slip is wrong; step 3 is checked from the true value
    wrong, op, x = int(rest) + 1, p.meta["ops"][2], p.meta["nums"][3]
    carried = bad[:2] + [f"{wrong}{op}{x}={wrong + x if op == '+' else wrong - x}"]
    assert t.verify_steps(p, carried)[2] == -1  # carrying the wrong value on is wrong too
    assert t.verify_steps(p, ["let me think"] + steps) == [0, 1, 1, 1]  # prose is uncheckable, not wrong


def test_fallible_teacher_slips_only_in_training_solutions_and_never_in_answers():
    clean, noisy = ArithTask(n_train=2000, teacher_slip=0.0), ArithTask(n_train=2000, teacher_slip=0.6)
    for split in ("train", "val", "test"):  # same problems, same true answers, whatever the teacher
        assert [(p.question, p.answer) for p in clean.problems(split)] == [
            (p.question, p.answer) for p in noisy.problems(split)
        ]
    for split in ("val", "test"):  # held-out references stay correct
        assert [p.solution for p in noisy.problems(split)] == [p.solution for p in clean.problems(split)]
    slipped = 0
    for p in noisy.problems("train"):
        steps = parse_completion(p.solution).steps
        wrong = [i for i, s in enumerate(noisy.verify_steps(p, steps)) if s == -1]
        if wrong:  # the first wrong step is a dropped carry: right ones digit, tens of the old value
            lhs, shown = steps[wrong[0]].split("=")
            true = eval(lhs)
            assert int(shown) != true and int(shown) % 10 == true % 10 and min(true, int(shown)) >= 0
            slipped += 1
    rate = slipped / len(noisy.problems("train"))
    assert 0.2 < rate < 0.4, rate  # ~41% of problems carry somewhere; the teacher slips at 60% per carry


def test_teacher_slip_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="teacher_slip"):
        ArithTask(teacher_slip=1.5)


def test_commute_writes_equivalent_additions_the_verifier_accepts():
    plain, varied = ArithTask(n_train=500, commute=0.0), ArithTask(n_train=500, commute=0.5)
    for split in ("train", "val", "test"):  # the same problems and answers, only the forms change
        assert [(p.question, p.answer) for p in plain.problems(split)] == [
            (p.question, p.answer) for p in varied.problems(split)
        ]
    swapped = 0
    for p, q in zip(plain.problems("val"), varied.problems("val")):
        a, b = parse_completion(p.solution).steps, parse_completion(q.solution).steps
        assert varied.verify_steps(q, b) == [1] * len(b)  # every form is verified right
        for op, x, y in zip(p.meta["ops"], a, b):
            if x != y:  # only an addition is ever swapped: "7+5=12" <-> "5+7=12"
                (l1, r1), (l2, r2) = x.split("="), y.split("=")
                assert op == "+" and r1 == r2 and l1.split("+")[::-1] == l2.split("+")
                swapped += 1
    additions = sum(p.meta["ops"].count("+") for p in plain.problems("val"))
    assert 0.4 < swapped / additions < 0.6
    p = next(p for p in plain.problems("val") if p.meta["ops"][0] == "-")
    a, x = p.meta["nums"][:2]
    assert plain.verify_steps(p, [f"{x}-{a}={x - a}"])[0] == -1  # a subtraction does not commute
    assert ArithTask(commute=0.0).problems("train")[0].solution == ArithTask().problems("train")[0].solution
