"""Every experiment config composes and trains one step, and the table script sweeps what exists.

An experiment file holds only deltas (`# @package _global_`) and fixes an equal token budget for
every method of its row; the methods come from the command line (scripts/reproduce_tables.sh).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from helpers import compose_cfg

from gfpo_bench.train import run

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((REPO / "gfpo_bench" / "conf" / "experiment").glob("*.yaml"))
SCRIPT = REPO / "scripts" / "reproduce_tables.sh"
ONE_STEP = [
    "trainer.max_steps=1",
    "prompts_per_step=2",
    "sampler.k=4",
    "callbacks.eval.max_problems=4",
    "callbacks.eval.at_start=false",
    "logger=csv",
    # every experiment trains from the session's default warm start: one step checks the wiring, and
    # a cold-start row's own (weaker) warm start would cost a second SFT build; its config is checked below
    "model.sft.steps=2000",
]
# ... and the varied rows' harmless variation (its own SFT data, its own warm start) likewise
# (test_tournament.py checks that those rows do set it); the code row's task has no shipped warm
# start: a 3-step one checks the wiring (as test_eval_cli.py does)
ARITH = ["task.commute=0.0"]
OWN_TASK = {"table2_code": ["model.sft.steps=3", "task.n_train=200", "task.n_val=6", "task.n_test=6"]}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_runs_one_step(path, tmp_path):
    assert path.read_text().startswith("# @package _global_"), "an experiment holds global deltas only"
    cfg = compose_cfg(
        [f"experiment={path.stem}", *ONE_STEP, *OWN_TASK.get(path.stem, ARITH)], tmp_path / "run"
    )
    assert cfg.budget.max_tokens, "every method of a row must get the same token budget"
    summary = run(cfg)
    assert summary["status"] == "completed" and summary["steps"] == 1
    assert summary["budget"]["max_tokens"] == cfg.budget.max_tokens


def test_cold_start_row_has_its_own_weaker_warm_start():
    default, cold = compose_cfg([]), compose_cfg(["experiment=table2_cold_start"])
    assert 0 < cold.model.sft.steps < default.model.sft.steps


def sweeps() -> list[list[str]]:
    """The gfpo-bench commands the table script would run (DRY_RUN=1 prints them)."""
    env = {**os.environ, "DRY_RUN": "1", "SEEDS": "0,1"}
    out = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    return [shlex.split(line)[1:] for line in out.stdout.splitlines() if line.startswith("gfpo-bench ")]


def test_table_script_sweeps_every_row_over_its_methods_at_the_experiment_budget():
    commands = sweeps()
    rows = {a.split("=", 1)[1] for cmd in commands for a in cmd if a.startswith("experiment=")}
    assert rows == {p.stem for p in EXPERIMENTS if p.stem.startswith(("table1_", "table2_"))}
    for cmd in commands:
        assert cmd[0] == "-m" and "hydra/launcher=joblib" in cmd and "seed=0,1" in cmd
        # every job of the sweep composes: take the first value of each swept override
        overrides = [a if "," not in a or a.startswith("hydra") else a.split(",")[0] for a in cmd[1:]]
        cfg = compose_cfg([o for o in overrides if not o.startswith("hydra")])
        assert cfg.budget.max_tokens and "budget.max_tokens" not in " ".join(cmd), (
            "the experiment sets the budget"
        )
        if cfg.get("schedule") is not None:
            assert cfg.schedule.second.start_tokens_frac, (
                "a schedule row switches at a fraction of the budget"
            )
