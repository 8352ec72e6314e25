"""The embedded `code` task: seeded generation, disjoint splits, honest specs, sandbox scoring and
the step verifier that pins a mistake to its step."""

from __future__ import annotations

import math
import re

import pytest

from gfpo_bench.tasks.code_synth import CodeSynthTask, program_lines, spec
from gfpo_bench.tasks.format import parse_completion, render_completion


@pytest.fixture(scope="module")
def task() -> CodeSynthTask:
    return CodeSynthTask(n_train=2000, n_val=200, n_test=200)


def _three_op_problem(task: CodeSynthTask):
    return next(p for p in task.problems("test") if len(p.meta["ops"]) == 3)


def test_generation_is_deterministic_and_seeded():
    a, b = CodeSynthTask(n_train=300), CodeSynthTask(n_train=300)
    other = CodeSynthTask(seed=1, n_train=300)
    for split in ("train", "val", "test"):
        assert [(p.question, p.answer, p.tests) for p in a.problems(split)] == [
            (p.question, p.answer, p.tests) for p in b.problems(split)
        ]
    assert [p.question for p in a.problems("train")] != [p.question for p in other.problems("train")]


def test_splits_are_disjoint_by_function_and_sized(task):
    questions = {s: {p.question for p in task.problems(s)} for s in ("train", "val", "test")}
    programs = {s: {p.answer for p in task.problems(s)} for s in ("train", "val", "test")}
    assert [len(task.problems(s)) for s in ("train", "val", "test")] == [2000, 200, 200]
    assert len(questions["train"]) == 2000  # no duplicate questions within a split
    for x, y in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not questions[x] & questions[y]
        assert not programs[x] & programs[y], "the same function appears in two splits"


def test_spec_describes_the_hidden_tests(task):
    """Read the spec as math (mod, floor of a true quotient): it must give every asserted value."""
    for p in task.problems("val"):
        expr = p.question.removeprefix("f(x)=").replace(" mod ", "%")
        for case in p.tests:
            x, want = map(int, re.fullmatch(r"assert f\((-?\d+)\) == (-?\d+)", case).groups())
            assert eval(expr, {"floor": math.floor, "max": max, "min": min, "x": x}) == want, p.question


def test_specs_mix_forms_and_bracket_only_where_needed():
    assert spec([("add", 3), ("mul", 2)], [1, 0]) == "f(x)=(3+x)*2"
    assert spec([("mul", 2), ("add", 3)], [0, 0]) == "f(x)=x*2+3"
    assert spec([("add", 3), ("mod", 5), ("rsub", 9)], [0, 0, 0]) == "f(x)=9-((x+3) mod 5)"
    assert spec([("div", 4), ("max", 1)], [0, 0]) == "f(x)=max(floor(x/4),1)"
    assert spec([("rsub", 1), ("div", 9)], [0, 0]) == "f(x)=floor((1-x)/9)"  # not floor(1-x/9)
    assert program_lines([("add", 3), ("mod", 5), ("rsub", 9)]) == ["y=x+3", "y=y%5", "y=9-y"]


def test_reference_solutions_pass_and_every_step_verifies(task):
    problems = task.problems("test")[:24]
    scores = task.score(problems, [p.solution for p in problems])
    assert all(s.correct for s in scores), [
        (p.question, s.detail) for p, s in zip(problems, scores) if not s.correct
    ]
    for p in problems:
        parsed = parse_completion(p.solution)
        assert parsed.format_ok
        assert task.verify_steps(p, parsed.steps) == [1] * len(p.meta["ops"])


def test_a_wrong_step_is_flagged_at_that_step(task):
    p = _three_op_problem(task)
    lines = program_lines(p.meta["ops"])
    wrong = lines[1] + "+1"  # the second operation, off by one
    assert task.verify_steps(p, [lines[0], wrong, lines[2]]) == [1, -1, -1]  # step 3 builds on it
    assert task.verify_steps(p, [lines[0], "now the second op:", *lines[1:]]) == [1, 0, 1, 1]
    assert task.verify_steps(p, [*lines, "y=y"]) == [1, 1, 1, -1]  # no fourth operation
    assert task.verify_steps(p, ["y=y+1", *lines[1:]])[0] == -1  # y read before it is assigned
    assert task.verify_steps(p, [lines[0], "y=y//0", lines[2]])[1] == -1  # breaks: not a crash
    assert task.verify_steps(p, [lines[0], "y=__import__('os').getpid()", lines[2]])[1] == -1  # not run


def test_an_equivalent_step_written_differently_verifies(task):
    p = next(p for p in task.problems("test") if p.meta["ops"][1][0] in ("add", "mul"))
    lines = program_lines(p.meta["ops"])
    a, b = re.fullmatch(r"y=y([+*])(\d+)", lines[1]).groups()
    assert task.verify_steps(p, [lines[0], f"y = {b} {a} y", *lines[2:]]) == [1] * len(lines)


def test_wrong_and_early_exit_programs_are_not_passes(task):
    p = _three_op_problem(task)
    lines = program_lines(p.meta["ops"])
    swapped = [lines[0], lines[2].replace("y=", "z=", 1), "y=z"]  # skips the second operation
    exits = "def f(x):\n    return 0\nimport sys\nsys.exit(0)"  # never reaches the hidden asserts
    completions = [
        render_completion(lines, "def f(x):\n" + "".join(f"    {s}\n" for s in swapped) + "    return y"),
        render_completion(lines, exits),
        render_completion(lines, p.answer),
    ]
    scores = task.score([p, p, p], completions)
    assert [s.correct for s in scores] == [False, False, True]
    assert scores[1].detail == "error"


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="unknown ops"):
        CodeSynthTask(ops=["add", "pow"])
    with pytest.raises(ValueError, match="min_ops"):
        CodeSynthTask(min_ops=3, max_ops=2)
