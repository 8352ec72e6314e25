"""CodeTask scoring end to end through the sandbox, with a two-problem task defined here."""

from __future__ import annotations

import pytest

from gfpo_bench.tasks.base import Split
from gfpo_bench.tasks.code_base import CodeTask
from gfpo_bench.tasks.format import render_completion
from gfpo_bench.types import Problem

ADD = Problem(
    uid="add",
    question="Write add(a, b) returning a + b.",
    answer="def add(a, b):\n    return a + b",
    solution="",
    tests=("assert add(1, 2) == 3", "assert add(-1, 1) == 0"),
)
REV = Problem(
    uid="rev",
    question="Write rev(s) returning s reversed.",
    answer="def rev(s):\n    return s[::-1]",
    solution="",
    tests=("assert rev('abc') == 'cba'", "assert rev('') == ''"),
)


class TinyCodeTask(CodeTask):
    name = "tiny_code"

    def problems(self, split: Split) -> list[Problem]:
        return [ADD, REV]


def completion(program: str) -> str:
    return render_completion(["write the function", "return the result"], program)


@pytest.fixture
def task() -> TinyCodeTask:
    return TinyCodeTask(timeout_s=5.0, memory_mb=256, workers=2)


def test_correct_and_wrong_programs(task: TinyCodeTask) -> None:
    scores = task.score(
        [ADD, REV, ADD],
        [
            completion(ADD.answer),
            completion("def rev(s):\n    return s"),
            completion("def add(a, b): return a - b"),
        ],
    )
    assert [s.correct for s in scores] == [True, False, False]
    assert [s.detail for s in scores] == ["passed", "failed", "failed"]
    assert scores[0].extracted == ADD.answer


def test_missing_answer_block_is_not_executed(task: TinyCodeTask, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []
    import gfpo_bench.tasks.code_base as code_base

    real = code_base.execute_many
    monkeypatch.setattr(code_base, "execute_many", lambda codes, **kw: ran.append(codes) or real(codes, **kw))
    scores = task.score([ADD, REV], ["<think>\nhmm\n</think>\nno answer here", completion(REV.answer)])
    assert scores[0].correct is False and scores[0].extracted is None
    assert scores[0].detail == "no answer block"
    assert scores[1].correct is True
    assert len(ran) == 1 and len(ran[0]) == 1 and "rev" in ran[0][0]  # only the second one ran


def test_fenced_code_is_unwrapped(task: TinyCodeTask) -> None:
    fenced = "```python\n" + REV.answer + "\n```"
    [score] = task.score([REV], [completion(fenced)])
    assert score.correct and score.extracted == REV.answer


def test_exiting_before_the_asserts_is_not_correct(task: TinyCodeTask) -> None:
    cheat = "import sys\ndef add(a, b):\n    return 0\nsys.exit(0)"
    hard_cheat = "import os\ndef add(a, b):\n    return 0\nos._exit(0)"
    scores = task.score([ADD, ADD], [completion(cheat), completion(hard_cheat)])
    assert [s.correct for s in scores] == [False, False]
    assert [s.detail for s in scores] == ["error", "error"]


def test_test_program_appends_the_tests(task: TinyCodeTask) -> None:
    text = task.test_program(ADD, ADD.answer)
    assert text.startswith(ADD.answer) and text.rstrip().endswith(ADD.tests[-1])


def test_verify_steps_defaults_to_uncheckable(task: TinyCodeTask) -> None:
    assert task.kind == "code"
    assert task.verify_steps(ADD, ["a", "b", "c"]) == [0, 0, 0]


def test_length_mismatch_raises(task: TinyCodeTask) -> None:
    with pytest.raises(ValueError):
        task.score([ADD, REV], [completion(ADD.answer)])
