"""Reward components, each as DESIGN.md defines it."""

from __future__ import annotations

import pytest

from gfpo_bench.rewards.reward import Reward
from gfpo_bench.tasks.format import parse_completion
from tests.helpers import TASK, comp, problem, rollouts

P = problem([3, 4, 2], ["+", "-"])


def test_components_are_computed_and_weighted():
    r, _ = rollouts([(P, [comp("3+4=7", "7-2=5", answer="5"), comp("3+4=8", "8-2=6", answer="6")])])
    out = Reward({"final": 2.0, "process": 1.0, "format": 0.5})(TASK, r)
    assert out.final.tolist() == [1.0, 0.0]
    assert out.process.tolist() == [1.0, -1.0]  # both steps of path 2 are wrong: (−1 −1)/2
    assert out.format.tolist() == [1.0, 1.0]
    assert out.total.tolist() == [2.0 + 1.0 + 0.5, 0.0 - 1.0 + 0.5]
    assert out.step_scores == [[1, 1], [-1, -1]]
    assert set(out.metrics()) == {
        f"train/reward/{k}" for k in ("final", "process", "format", "total", "correct")
    }


def test_wrong_final_switch_gives_minus_one():
    r, _ = rollouts([(P, [comp("3+4=8", "8-2=6", answer="6")])])
    assert Reward(wrong_final=-1.0)(TASK, r).final.tolist() == [-1.0]
    with pytest.raises(ValueError, match="wrong_final"):
        Reward(wrong_final=0.5)


def test_majority_process_reward_marks_the_majority_answer_cluster():
    texts = [
        comp("3+4=7", "7-2=5", answer="5"),
        comp("3+4=7", "7-2=5", answer="5"),
        comp("x", answer="9"),
        "junk",
    ]
    r, _ = rollouts([(P, texts)])
    out = Reward(process="majority")(TASK, r)
    assert out.process.tolist() == [1.0, 1.0, 0.0, 0.0]


def test_noise_flips_final_rewards_at_the_configured_rate():
    texts = [comp("3+4=7", "7-2=5", answer="5")] * 400
    r, _ = rollouts([(P, texts)])
    out = Reward(noise=0.25, seed=0)(TASK, r)
    assert 0.18 < (out.final == 0).float().mean().item() < 0.32
    assert out.correct.all()  # raw correctness is never noised (dynamic sampling judges on it)


@pytest.mark.parametrize(
    "text, ok",
    [
        ("<think>\n1+1=2\n</think>\n<answer>2</answer>", True),
        ("<answer>2</answer>", False),  # no reasoning: a guess
        ("<think>\n</think>\n<answer>2</answer>", False),  # empty reasoning
        ("<answer>2</answer><think>\n1+1=2\n</think>", False),  # reasoning after the answer
        ("<think>\n1+1=2\n</think>\n<answer>2", False),  # unclosed answer
        ("<think>\n1+1=2\n</think>\n<answer>2</answer> and more", False),  # trailing text
    ],
)
def test_format_reward_cases(text, ok):
    assert parse_completion(text).format_ok is ok
