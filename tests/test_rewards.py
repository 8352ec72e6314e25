"""Reward components, each as docs/design.md defines it."""

from __future__ import annotations

import pytest
import torch
from helpers import TASK, comp, problem, rollouts

from gfpo_bench.rewards.reward import Reward
from gfpo_bench.tasks.format import parse_completion

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
    assert out.correct.all()  # raw correctness is never noised (metrics only)
    assert torch.equal(out.observed_correct, out.final > 0.5)  # what every method's label reads


def test_process_noise_flips_step_scores_at_the_configured_rate():
    texts = [comp("3+4=7", "7-2=5", answer="5")] * 400  # every step right: r_t = +1
    r, _ = rollouts([(P, texts)])
    out = Reward(process_noise=0.25, seed=0)(TASK, r)
    flipped = sum(scores.count(-1) for scores in out.step_scores) / 800
    assert 0.2 < flipped < 0.3
    # R_process reads the flipped scores: mean of (+1 or -1) per path; R_final is untouched
    assert out.process.tolist() == [sum(s) / 2 for s in out.step_scores]
    assert out.final.eq(1.0).all() and out.correct.all()


def test_process_noise_flips_signs_keeps_zeros_and_faults():
    reward = Reward(process_noise=1.0)  # every step flipped
    scores = [[1, 0, -1], [1, 1], [1]]
    assert reward._flip_steps(scores, faulted={2}) == [[-1, 0, 1], [-1, -1], [1]]


def test_reward_noise_resumes_exactly_and_draws_nothing_when_off():
    texts = [comp("3+4=7", "7-2=5", answer="5"), comp("3+4=8", "8-2=6", answer="6")] * 20
    r, _ = rollouts([(P, texts)])
    run = Reward(noise=0.3, process_noise=0.3, seed=3)
    first, second = run(TASK, r), run(TASK, r)
    stopped = Reward(noise=0.3, process_noise=0.3, seed=3)
    stopped(TASK, r)
    resumed = Reward(noise=0.3, process_noise=0.3, seed=99)
    resumed.load_state_dict(stopped.state_dict())  # what a checkpoint carries
    again = resumed(TASK, r)
    assert again.step_scores == second.step_scores and torch.equal(again.final, second.final)
    assert again.step_scores != first.step_scores  # the stream moved on
    # R_final's flips are drawn first: turning process noise on does not change which R_finals flip
    both, final_only = Reward(noise=0.3, process_noise=0.3, seed=3), Reward(noise=0.3, seed=3)
    assert torch.equal(both(TASK, r).final, final_only(TASK, r).final)
    # and with both knobs at 0 nothing is drawn
    quiet = Reward(seed=3)
    before = quiet.gen.get_state().clone()
    quiet(TASK, r)
    assert torch.equal(quiet.gen.get_state(), before)


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


class FlakyTask(type(TASK)):
    """The arith task, except that its checker or its step verifier raises on chosen answers."""

    def __init__(self, bad_score: str | None = None, bad_verify: str | None = None) -> None:
        super().__init__()
        self.bad_score, self.bad_verify = bad_score, bad_verify

    def score(self, problems, completions):
        if self.bad_score is not None and any(self.bad_score in c for c in completions):
            if len(completions) == 1:
                raise RuntimeError("checker crashed")
            raise RuntimeError("checker crashed on the batch")
        return super().score(problems, completions)

    def verify_steps(self, problem, steps):
        if self.bad_verify is not None and any(self.bad_verify in s for s in steps):
            raise ZeroDivisionError("verifier crashed")
        return super().verify_steps(problem, steps)


RIGHT = comp("3+4=7", "7-2=5", answer="5")


@pytest.mark.parametrize("fault", ["checker", "verifier"])
def test_a_reward_that_raises_on_one_completion_counts_it_wrong_and_goes_on(fault, caplog):
    # the second completion is right, but its checker (or its step verifier) raises on it
    poisoned = comp("3+4=7", "7-2=5", "5+0=5", answer="5")  # right, with one extra (right) step
    r, _ = rollouts([(P, [RIGHT, poisoned, RIGHT])])
    task = FlakyTask(bad_score="5+0=5") if fault == "checker" else FlakyTask(bad_verify="5+0=5")
    reward = Reward()
    with caplog.at_level("WARNING"):
        out = reward(task, r)
    assert out.correct.tolist() == [True, False, True]
    assert out.final.tolist() == [1.0, 0.0, 1.0]
    assert out.process.tolist() == [1.0, -1.0, 1.0]  # its steps count as wrong: (-1 -1 -1)/3
    assert reward.faults == 1 and "counted as wrong" in caplog.text
    reward(task, r)
    assert reward.faults == 2  # a counter over the run, logged as train/reward/faults


def test_a_checker_that_raises_on_every_completion_stops_the_run():
    from gfpo_bench.errors import RunFault

    r, _ = rollouts([(P, [RIGHT, RIGHT])])
    with pytest.raises(RunFault, match="raised on all 2 completions"):
        Reward()(FlakyTask(bad_score="<answer>"), r)


def test_reward_faults_reach_the_logged_metrics_and_summary(run_cfg, monkeypatch):
    import csv
    from pathlib import Path

    from gfpo_bench.tasks.arith import ArithTask
    from gfpo_bench.train import run

    real = ArithTask.verify_steps
    calls = {"n": 0}

    def every_fifth_raises(self, problem, steps):
        calls["n"] += 1
        if calls["n"] % 5 == 0:
            raise ValueError("injected verifier fault")
        return real(self, problem, steps)

    monkeypatch.setattr(ArithTask, "verify_steps", every_fifth_raises)
    cfg = run_cfg("trainer.max_steps=2", "callbacks.eval.at_start=false")
    summary = run(cfg)
    assert summary["status"] == "completed" and summary["reward_faults"] > 0
    rows = list(csv.DictReader((Path(cfg.hydra.runtime.output_dir) / "csv" / "metrics.csv").open()))
    logged = [float(r["train/reward/faults"]) for r in rows if r.get("train/reward/faults")]
    assert logged and logged[-1] == summary["reward_faults"]


def test_process_noise_that_no_reward_reads_is_refused(tmp_path):
    from helpers import compose_cfg

    from gfpo_bench.errors import ConfigError
    from gfpo_bench.validation import validate

    cfg = compose_cfg(["reward.process=majority", "reward.process_noise=0.1"], tmp_path / "run")
    with pytest.raises(
        ConfigError, match="process_noise=0.1 flips step scores, which reward.process=majority"
    ):
        validate(cfg)
    validate(compose_cfg(["reward.process_noise=0.1"], tmp_path / "run2"))  # verifier: it reads them
