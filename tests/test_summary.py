"""summary.json has one schema, `gfpo_bench.summary.RunSummary`: written and read back it is the same
summary; a completed RL run, an SFT run and a failed run write exactly the keys (and key order) they
wrote before the schema had one home; compare, W&B and the resume check read it through the class."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import compose_cfg

from gfpo_bench.compare.collect import collect_runs, summary_to_row
from gfpo_bench.summary import Budget, RunSummary, summarise_pairs, warm_start_metrics
from gfpo_bench.warmstart import completed_summary

# the top-level keys of a 20-step default run's summary.json, in order, as written before the schema
# moved into summary.py (/work/notes/before20/summary.json, issue 11's "before" reference)
RL_KEYS = [
    "method", "seed", "task", "stage", "overrides", "budget", "status", "error", "metrics",
    "pair_stats", "tokens_generated", "wall_time_s", "steps", "skipped_batches", "nonfinite_steps",
    "reward_faults", "warm_start", "eval_history", "schedule_switches", "final_model", "checkpoint",
    "config",
]  # fmt: skip
BUDGET_KEYS = ["max_steps", "max_tokens", "tokens_used", "steps_used", "stopped_by"]
# a failed run (cli.report_failure) and an SFT run (stage=sft) wrote these
FAILED_KEYS = [
    "method", "seed", "task", "stage", "overrides", "budget", "status", "error", "metrics",
    "pair_stats", "tokens_generated", "wall_time_s", "steps", "config",
]  # fmt: skip
SFT_KEYS = [*FAILED_KEYS[:-1], "final_model", "config"]
EVAL = [
    {"step": 0, "val/math/accuracy": 0.64, "val/tokens_generated": 0.0},
    {"step": 20, "val/math/accuracy": 0.75, "val/tokens_generated": 35292.0},
]


@pytest.fixture
def cfg(tmp_path):
    return compose_cfg(["trainer.max_steps=20", "logger=csv"], tmp_path / "run")


def completed_rl(cfg, run_dir: Path, **extra) -> RunSummary:
    """A completed RL run's summary, with the fields train.run passes."""
    return RunSummary.from_config(
        cfg,
        task="arith",
        status="completed",
        metrics={"val/math/accuracy": 0.75, "val/tokens_generated": 35292.0},
        pair_stats={"pairs_per_step": 13.0},
        eval_history=EVAL,
        tokens_generated=35292,
        wall_time_s=12.2,
        steps=20,
        skipped_batches=0,
        nonfinite_steps=0,
        reward_faults=0,
        schedule_switches=[],
        final_model=str(run_dir / "final_model"),
        checkpoint=str(run_dir / "checkpoints" / "last.ckpt"),
        **{"ddp": None, **extra},
    )


def test_a_completed_rl_run_writes_the_keys_and_order_it_wrote_before(cfg, tmp_path):
    summary = completed_rl(cfg, tmp_path)
    data = json.loads(summary.write(tmp_path).read_text())
    assert list(data) == RL_KEYS and list(data["budget"]) == BUDGET_KEYS
    assert data["budget"] == {
        "max_steps": 20, "max_tokens": None, "tokens_used": 35292, "steps_used": 20, "stopped_by": "max_steps"
    }  # fmt: skip
    # the warm start is the step-0 evaluation (without its x position) and the SFT steps
    assert data["warm_start"] == {"sft_steps": cfg.model.sft.steps, "val/math/accuracy": 0.64}
    assert data["config"]["seed"] == 0 and data["config"]["trainer"]["max_steps"] == 20
    assert data["error"] is None and data["task"] == "arith"
    with_ddp = completed_rl(cfg, tmp_path, ddp={"world_size": 2}).to_dict()
    assert list(with_ddp) == [*RL_KEYS[:16], "ddp", *RL_KEYS[16:]]  # ddp after reward_faults


def test_written_and_read_back_it_is_equal(cfg, tmp_path):
    summary = completed_rl(cfg, tmp_path, ddp={"world_size": 2, "tokens_per_rank": [1, 2]})
    path = summary.write(tmp_path)
    assert path == tmp_path / "summary.json"
    assert RunSummary.read(path) == summary == RunSummary.read(tmp_path)  # the file or its dir
    assert isinstance(RunSummary.read(path).budget, Budget)


def test_failed_and_sft_runs_write_their_keys(cfg, tmp_path):
    failed = RunSummary.from_config(cfg, status="failed", error="disk full", wall_time_s=1.5)
    data = failed.to_dict()
    assert list(data) == FAILED_KEYS
    assert data["task"] is None and data["metrics"] == {} and data["pair_stats"] == {}
    assert (data["tokens_generated"], data["steps"], data["error"]) == (0, 0, "disk full")
    assert data["budget"] == dict(zip(BUDGET_KEYS, [20, None, 0, 0, None]))  # no stopped_by: failed
    sft = RunSummary.from_config(
        cfg, task="arith", status="completed", metrics={"val/math/accuracy": 0.5}, wall_time_s=3.0,
        steps=20, final_model="/x/final_model",
    )  # fmt: skip
    assert list(sft.to_dict()) == SFT_KEYS and sft.to_dict()["pair_stats"] == {}


def test_a_budget_spent_on_tokens_says_so(cfg):
    cfg.budget.max_tokens = 100
    s = RunSummary.from_config(cfg, status="completed", tokens_generated=120, steps=3, wall_time_s=1.0)
    assert s.budget == Budget(20, 100, 120, 3, "max_tokens")


def test_older_files_without_optional_keys_are_read(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"method": "srpo", "status": "completed"}))
    s = RunSummary.read(tmp_path)
    assert (s.method, s.completed, s.metrics, s.budget, s.eval_history, s.overrides) == (
        "srpo", True, {}, None, None, []
    )  # fmt: skip
    for bad in ([], {"status": "completed"}, {"method": "x", "metrics": [1]}):
        with pytest.raises(ValueError):
            RunSummary.from_dict(bad)


def test_compare_reads_completed_and_failed_runs(cfg, tmp_path):
    completed_rl(cfg, tmp_path / "a").write(_mkdir(tmp_path / "a"))
    RunSummary.from_config(cfg, status="failed", error="boom", wall_time_s=0.5).write(_mkdir(tmp_path / "b"))
    df = collect_runs(tmp_path).sort_values("run_dir")
    assert df["status"].tolist() == ["completed", "failed"] and df["error"].tolist()[1] == "boom"
    assert df["val/math/accuracy"].tolist()[0] == 0.75
    assert df["val/math/accuracy_gain"].tolist()[0] == pytest.approx(0.75 - 0.64)
    assert df["pair/pairs_per_step"].tolist()[0] == 13.0 and df["steps"].tolist() == [20, 0]
    assert df["config.trainer.max_steps"].tolist() == [20, 20]
    # a RunSummary and its JSON content give the same row
    summary = RunSummary.read(tmp_path / "a")
    assert summary_to_row(summary, tmp_path) == summary_to_row(summary.to_dict(), tmp_path)


def test_resume_check_reads_only_completed_summaries(cfg, tmp_path):
    assert completed_summary(tmp_path) is None  # no file
    RunSummary.from_config(cfg, status="failed", error="x", wall_time_s=0.1).write(tmp_path)
    assert completed_summary(tmp_path) is None
    completed_rl(cfg, tmp_path).write(tmp_path)
    assert completed_summary(tmp_path).metrics["val/math/accuracy"] == 0.75
    (tmp_path / "summary.json").write_text("{not json")
    assert completed_summary(tmp_path) is None


def test_flat_is_what_wandb_gets(cfg, tmp_path):
    flat = completed_rl(cfg, tmp_path).flat()
    assert list(flat)[:10] == [
        "method", "seed", "task", "stage", "status", "budget", "tokens_generated", "wall_time_s", "steps",
        "overrides",
    ]  # fmt: skip
    assert flat["val/math/accuracy"] == 0.75 and flat["pair_stats/pairs_per_step"] == 13.0
    assert flat["budget"]["stopped_by"] == "max_steps" and "config" not in flat


def test_pair_stats_and_warm_start_helpers(cfg):
    history = [
        {"train/pairs": 4.0, "train/reward_gap": float("nan")},
        {"train/pairs": 2.0, "train/reward_gap": 1.0},
    ]
    assert summarise_pairs(history) == {"pairs_per_step": 3.0, "reward_gap": 1.0}
    assert warm_start_metrics(cfg, [{"step": 5, "val/x": 1.0}]) == {"sft_steps": cfg.model.sft.steps}
    cfg.init_from = "/runs/a"
    assert warm_start_metrics(cfg, EVAL)["init_from"] == "/runs/a"


def test_outcome_names_the_results(cfg, tmp_path):
    text = completed_rl(cfg, tmp_path).outcome(tmp_path, tmp_path / "summary.json")
    assert f"final model:  {tmp_path / 'final_model'}" in text
    assert "final:        val/math/accuracy=0.7500, val/tokens_generated=35292.0000" in text


def test_summary_module_is_pure():
    import subprocess
    import sys

    code = "import sys, gfpo_bench.summary; print([m for m in ('torch', 'lightning') if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p
