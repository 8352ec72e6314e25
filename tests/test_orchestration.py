"""Orchestration end to end: sweeps through the real launcher and sweeper plugins, the comparison
table of a sweep, schedules, token budgets, warm starts and resumes.

Sweeps run the installed `gfpo-bench` in a subprocess (as a user would); single runs call
`train.run` in-process on the composed config. Every run is a few steps of the tiny model.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import subprocess
from pathlib import Path
from statistics import mean

import pandas as pd
import pytest
import torch
import yaml
from helpers import compose_cfg
from safetensors.torch import load_file

from gfpo_bench.compare import main as compare_main
from gfpo_bench.errors import ConfigError
from gfpo_bench.module import PairwiseRLModule
from gfpo_bench.schedule import build_schedule
from gfpo_bench.train import run

ACC = "val/math/accuracy"
TINY = ["trainer.max_steps=2", "prompts_per_step=2", "sampler.k=4", "callbacks.eval.max_problems=8"]


def gfpo_bench(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(["gfpo-bench", *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def summaries(sweep: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]


def csv_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_joblib_sweep_compares_into_a_table_that_matches_its_summaries(tmp_path):
    sweep, out = tmp_path / "sweep", tmp_path / "comparison"
    # 2 strategies x 2 seeds, plus reward.noise=1.5: four jobs that fail (noise must be in [0, 1])
    args = [
        "-m",
        "pairing=srpo,gfpo",
        "seed=0,1",
        "reward.noise=0.0,1.5",
        *TINY,
        "logger=csv",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}",
    ]
    gfpo_bench(*args)

    runs = summaries(sweep)
    done = [s for s in runs if s["status"] == "completed"]
    failed = [s for s in runs if s["status"] == "failed"]
    assert sorted((s["method"], s["seed"]) for s in done) == [
        (m, s) for m in ("gfpo", "srpo") for s in (0, 1)
    ]
    assert len(failed) == 4 and all("reward.noise" in s["error"] for s in failed), (
        "failures must not stop the sweep"
    )

    assert compare_main([str(sweep), "--out", str(out), "--metrics", ACC]) == 0
    table = pd.read_csv(out / "table.csv").set_index("method")
    report = (out / "table.md").read_text()
    assert "4 completed runs in the means; 4 failed runs excluded" in report
    for method in ("srpo", "gfpo"):
        mine = [s for s in done if s["method"] == method]
        row = table.loc[method]
        assert row["n_seeds"] == 2
        assert row[f"{ACC}:mean"] == pytest.approx(mean(s["metrics"][ACC] for s in mine))
        assert row["tokens_generated:mean"] == pytest.approx(mean(s["tokens_generated"] for s in mine))
        assert row["pair/pairs_per_step:mean"] == pytest.approx(
            mean(s["pair_stats"]["pairs_per_step"] for s in mine)
        )
        assert f"| {method} | {row[f'{ACC}:mean']:.3f} ± " in report

    # The same sweep again (here with its values reordered, which renumbers the jobs) finishes it:
    # completed jobs keep their dirs and are skipped, never overwritten.
    before = {p: p.stat().st_mtime_ns for p in sweep.glob("*noise=0.0*/summary.json")}
    gfpo_bench(*[a.replace("pairing=srpo,gfpo", "pairing=gfpo,srpo") for a in args])
    assert before == {p: p.stat().st_mtime_ns for p in before}
    assert len(summaries(sweep)) == 8, "a job of the re-run landed in a new dir"
    assert all("already completed: skipped" in (p.parent / "cli.log").read_text() for p in before)


def test_sweep_jobs_log_to_one_wandb_group_each_in_its_own_named_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    sweep = tmp_path / "sweep-42"
    # the basic launcher runs both jobs in one process: the second must not reuse the first's W&B run
    gfpo_bench(
        "-m",
        "pairing=srpo,vapo",
        "trainer.max_steps=1",
        "prompts_per_step=2",
        "sampler.k=4",
        "callbacks.eval.max_problems=4",
        "callbacks.eval.at_start=false",
        f"hydra.sweep.dir={sweep}",
    )
    seen = []
    for job in sorted(p for p in sweep.iterdir() if p.is_dir()):
        files = list(job.glob("wandb/offline-run-*/run-*.wandb"))
        assert len(files) == 1, f"{job.name}: expected its own offline W&B run"
        rec = wandb_run_record(files[0])
        method = json.loads((job / "summary.json").read_text())["method"]
        assert rec["group"] == "sweep-42"
        assert rec["name"] == f"{method}-{job.name}" and f"pairing={method}" in rec["name"]
        assert rec["summary"]["method"] == method and "pair_stats/pairs_per_step" in rec["summary"]
        seen.append(method)
    assert seen == ["srpo", "vapo"]


def wandb_run_record(path: Path) -> dict:
    """Group, display name and final summary of an offline W&B run file (LevelDB log format of
    protobuf Records: 7-byte W&B header, 32 KiB blocks, 7-byte chunk headers)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, buf, out = 7, b"", {"summary": {}}
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer: padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk  # FULL/FIRST start a record, MIDDLE/LAST extend it
        if kind not in (1, 4) or not buf:
            continue
        rec = pb.Record()
        rec.ParseFromString(buf)
        if rec.HasField("run"):
            out["group"], out["name"] = rec.run.run_group, rec.run.display_name
        if rec.HasField("summary"):
            out["summary"].update({u.key: json.loads(u.value_json) for u in rec.summary.update})
    return out


def test_optuna_search_tunes_and_returns_the_validation_metric(tmp_path):
    sweep = tmp_path / "search"
    gfpo_bench(
        "hparams_search=pairwise_optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=1",
        *TINY,
        "logger=csv",
        "callbacks.eval.at_start=false",
        f"hydra.sweep.dir={sweep}",
    )
    runs = summaries(sweep)
    assert len(runs) == 2 and all(s["status"] == "completed" for s in runs)
    tuned = {"loss.beta", "optim.lr", "reward.weights.process", "reward.weights.format"}
    assert all(tuned <= {o.split("=")[0] for o in s["overrides"]} for s in runs), (
        "not every parameter was sampled"
    )
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(s["metrics"][ACC] for s in runs))


def test_slurm_launcher_config_composes_onto_submitit():
    cfg = compose_cfg(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node) == ("gpu", 1, 1)
    assert launcher.timeout_min > 0 and launcher.submitit_folder.endswith("/.submitit/%j")


def test_slurm_jobs_requeue_on_preemption_and_timeout():
    """The sbatch script submitit writes from conf/hydra/launcher/slurm.yaml: SLURM may requeue the
    job, and signals it before the time limit so that submitit requeues it (max_num_timeout times)."""
    from submitit.slurm.slurm import _make_sbatch_string

    launcher = compose_cfg(["hydra/launcher=slurm"]).hydra.launcher
    assert launcher.max_num_timeout > 0
    script = _make_sbatch_string(
        command="python -m submitit.core._submit /tmp/x",
        folder="/tmp/x",
        signal_delay_s=launcher.signal_delay_s,
        additional_parameters=dict(launcher.additional_parameters),
    )
    assert "#SBATCH --requeue" in script
    assert f"#SBATCH --signal=USR2@{launcher.signal_delay_s}" in script


@pytest.mark.parametrize(
    "switch,expect_step",
    # 0.001 of 10,000 tokens: reached by the first step's generations, so the switch comes at step 1
    [("schedule.second.start_step=2", 2), ("schedule.second.start_tokens_frac=0.001", 1)],
    ids=["at_step", "at_token_fraction"],
)
def test_schedule_switches_strategy_inside_one_run(run_cfg, switch, expect_step):
    cfg = run_cfg(
        "schedule=srpo_to_gfpo",
        switch,
        "budget.max_tokens=10000",
        "trainer.max_steps=3",
        "prompts_per_step=2",
        "sampler.k=4",
        "callbacks.eval.every_n_steps=1000",  # no periodic eval (0 is rejected by validation)
    )
    summary = run(cfg)
    assert summary["method"] == "srpo_to_gfpo"
    (event,) = summary["schedule_switches"]
    assert (event["from"], event["to"], event["step"]) == ("srpo", "gfpo", expect_step)
    stages = {
        int(r["step"]): float(r["train/pairing_stage"])
        for r in csv_rows(Path(cfg.hydra.runtime.output_dir))
        if r.get("train/pairing_stage")
    }
    assert stages == {s: float(s >= expect_step) for s in range(3)}


def test_a_schedule_chains_grpo_and_a_pairing_strategy(run_cfg):
    cfg = run_cfg(
        "schedule=grpo_to_gfpo", "schedule.second.start_step=1", "trainer.max_steps=2",
        "prompts_per_step=2", "sampler.k=4", "callbacks.eval.every_n_steps=1000",
    )  # fmt: skip
    summary = run(cfg)
    assert summary["method"] == "grpo_to_gfpo" and summary["steps"] == 2
    (event,) = summary["schedule_switches"]
    assert (event["from"], event["to"], event["step"]) == ("grpo", "gfpo", 1)


def test_switch_by_token_fraction_needs_a_token_budget():
    cfg = compose_cfg(["schedule=dapo_to_gfpo", "schedule.second.start_tokens_frac=0.5"])
    with pytest.raises(
        ConfigError, match=r"schedule\.second\.start_tokens_frac=0\.5 needs budget\.max_tokens"
    ):
        build_schedule(cfg)


def test_token_budget_ends_the_run_and_is_recorded(run_cfg):
    cfg = run_cfg(
        "budget.max_tokens=600",
        "trainer.max_steps=50",
        "prompts_per_step=2",
        "sampler.k=4",
        "callbacks.eval.every_n_steps=1000",  # no periodic eval (0 is rejected by validation)
    )
    summary = run(cfg)
    budget = summary["budget"]
    assert budget["stopped_by"] == "max_tokens" and 1 < summary["steps"] < 50
    assert budget["tokens_used"] == summary["tokens_generated"] >= 600
    rows = [
        float(r["train/tokens_generated"])
        for r in csv_rows(Path(cfg.hydra.runtime.output_dir))
        if r.get("train/tokens_generated")
    ]
    assert rows[-2] < 600 <= rows[-1], "training went on after the budget was spent"


def test_init_from_warm_starts_from_the_given_weights(tmp_path, monkeypatch):
    sft_cfg = ["stage=sft", "trainer.max_steps=3", "logger=csv", "callbacks.eval.max_problems=4"]
    sft = run(compose_cfg(sft_cfg, tmp_path / "sft"))
    sft_weights = load_file(str(Path(sft["final_model"]) / "model.safetensors"))
    started = []  # (model weights, optimizer state) of each run as training starts
    monkeypatch.setattr(
        PairwiseRLModule,
        "on_train_start",
        # deep copies: the optimizer's state tensors are updated in place by the steps that follow
        lambda self: started.append(
            (weights(self.model), copy.deepcopy(self.trainer.optimizers[0].state_dict()))
        ),
    )

    # 1. a run dir (here a stage=sft run): its final_model/
    rl_dir = tmp_path / "rl"
    run(compose_cfg([*TINY, "logger=csv", "pairing=vapo", f"init_from={tmp_path / 'sft'}"], rl_dir))
    for key, value in sft_weights.items():
        assert torch.equal(started[0][0][key], value), f"{key} does not come from the SFT run"

    # 2. a checkpoint, with the optimizer's moments (init_optimizer) but this run's learning rate
    ckpt = rl_dir / "checkpoints" / "last.ckpt"
    overrides = [*TINY, "logger=csv", "trainer.max_steps=1", "optim.lr=5e-4", f"init_from={ckpt}"]
    run(compose_cfg([*overrides, "init_optimizer=true"], tmp_path / "rl2"))
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    model, opt = started[1]
    for key, value in model.items():
        assert torch.equal(value, saved["state_dict"][f"model.{key}"]), (
            f"{key} does not come from {ckpt.name}"
        )
    assert any(not torch.equal(model[k], started[0][0][k]) for k in model), "run 1 did not train"
    saved_opt = saved["optimizer_states"][0]
    assert opt["state"].keys() == saved_opt["state"].keys() and opt["state"]
    for i, state in opt["state"].items():
        assert torch.equal(state["exp_avg"], saved_opt["state"][i]["exp_avg"])
    assert opt["param_groups"][0]["lr"] == 5e-4 != saved_opt["param_groups"][0]["lr"]


def test_rerunning_an_interrupted_run_resumes_from_its_last_checkpoint(run_cfg, monkeypatch):
    args = (
        "trainer.max_steps=4",
        "callbacks.checkpoint.every_n_train_steps=2",
        "prompts_per_step=2",
        "sampler.k=4",
        "callbacks.eval.every_n_steps=1000",  # no periodic eval (0 is rejected by validation)
    )
    real_step = PairwiseRLModule.training_step

    def crash_at_step_3(self, batch, idx):
        if self.global_step == 3:
            raise RuntimeError("node lost")
        return real_step(self, batch, idx)

    monkeypatch.setattr(PairwiseRLModule, "training_step", crash_at_step_3)
    with pytest.raises(RuntimeError, match="node lost"):
        run(run_cfg(*args))
    ckpt = torch.load(
        Path(run_cfg(*args).hydra.runtime.output_dir) / "checkpoints" / "last.ckpt",
        map_location="cpu",
        weights_only=False,
    )
    assert ckpt["global_step"] == 2
    monkeypatch.setattr(PairwiseRLModule, "training_step", real_step)

    starts = []
    monkeypatch.setattr(
        PairwiseRLModule,
        "on_train_start",
        lambda self: starts.append((self.trainer.global_step, self.tokens_generated)),
    )
    summary = run(run_cfg(*args))  # the same command again
    tokens_at_2 = ckpt["gfpo_counters"]["tokens_generated"]
    assert starts == [(2, tokens_at_2)], "did not continue from the step-2 checkpoint"
    assert summary["status"] == "completed" and summary["steps"] == 4
    assert summary["tokens_generated"] > tokens_at_2
    with pytest.raises(ConfigError, match="already holds a completed run"):
        run(run_cfg(*args))  # and a finished run is never trained over by accident
    assert not math.isnan(summary["metrics"][ACC])
