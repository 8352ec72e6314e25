"""Helpers the test modules share: the composed Hydra config (`compose_cfg`, the `FAST` overrides), the
CLI as a subprocess (`gfpo_bench`), and hand-built rollouts (real tokenizer, real task, chosen
completion texts). Imported as `from helpers import ...` (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import gfpo_bench.cli  # noqa: F401  (registers the run_id resolver)
from gfpo_bench.models.prompting import PromptFormatter
from gfpo_bench.models.tokenizer import build_char_tokenizer
from gfpo_bench.rewards.reward import Reward
from gfpo_bench.sampling.base import rollouts_from_texts
from gfpo_bench.tasks.arith import ArithTask
from gfpo_bench.tasks.format import render_completion

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Small but real: a few optimizer steps of the embedded default, no W&B process.
FAST = [
    "logger=csv",
    "trainer.max_steps=3",
    "prompts_per_step=6",
    "sampler.k=6",
    "callbacks.eval.every_n_steps=2",
    "callbacks.eval.max_problems=12",
    "callbacks.checkpoint.every_n_train_steps=2",
]


def compose_cfg(overrides: list[str], run_dir: Path | None = None, config_name: str = "config") -> DictConfig:
    """The composed config exactly as `gfpo-bench <overrides>` would see it, run dir = run_dir."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="gfpo_bench.conf", version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    if run_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
    return cfg


# The CLI as a user runs it, one step and a tiny evaluation, in a subprocess.
CLI_BASE = ["logger=csv", "trainer.max_steps=1", "callbacks.eval.max_problems=4"]


def gfpo_bench(tmp_path, *overrides: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gfpo_bench.cli", *CLI_BASE, f"hydra.run.dir={tmp_path}/run", *overrides],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HYDRA_FULL_ERROR": "0", "GFPO_BENCH_DEBUG": "", **(env or {})},
    )


TOK = build_char_tokenizer()
TASK = ArithTask()


def problem(question_nums: list[int], ops: list[str]):
    """An arith Problem with the given chain, e.g. ([3, 4, 2], ['+', '-']) -> 3+4-2."""
    from gfpo_bench.types import Problem

    steps, acc = [], question_nums[0]
    for op, x in zip(ops, question_nums[1:]):
        res = acc + x if op == "+" else acc - x
        steps.append(f"{acc}{op}{x}={res}")
        acc = res
    q = TASK._question(question_nums, ops)
    return Problem(
        uid=q,
        question=q,
        answer=str(acc),
        solution=render_completion(steps, str(acc)),
        meta={"nums": question_nums, "ops": ops},
    )


def rollouts(groups: list[tuple]):
    """groups: [(problem, [completion texts])] -> (Rollouts, RewardOutput) with the default reward."""
    probs = [g[0] for g in groups]
    r = rollouts_from_texts(TOK, PromptFormatter(), TASK, probs, [g[1] for g in groups])
    return r, Reward()(TASK, r)


def comp(*steps: str, answer: str) -> str:
    return render_completion(list(steps), answer)
