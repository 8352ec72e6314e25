"""`stage=sft`: supervised training on the task's reference solutions, then a greedy evaluation.

Its final_model/ can be another run's `init_from` (e.g. an SFT warm start for model=hf before RL).
The loop is models/sft.py's, the one that builds the embedded default's warm start; `trainer.max_steps`
overrides `model.sft.steps`. The run writes the same summary.json as an RL run (summary.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig

from gfpo_bench.eval.evaluate import evaluate_policy
from gfpo_bench.loggers import report_run
from gfpo_bench.models.saving import save_final_model
from gfpo_bench.models.sft import SFTConfig, supervised_finetune
from gfpo_bench.policies.model import ModelPolicy
from gfpo_bench.summary import COMPLETED, RunSummary


def run_sft(cfg: DictConfig, task, model, tok, formatter, run_dir: Path, t0: float) -> dict:
    """Train `model` in place on `task`'s training solutions; evaluate; save; write summary.json."""
    steps = {"steps": int(cfg.trainer.max_steps)} if cfg.trainer.get("max_steps") else {}
    sft = SFTConfig(**{**(cfg.model.get("sft") or {}), **steps})
    losses = supervised_finetune(model, tok, task, sft, seed=cfg.seed, formatter=formatter)
    policy = ModelPolicy(model, tok, task, formatter, cfg.sampler.max_new_tokens)
    metrics = evaluate_policy(policy, task, task.problems("val")[: cfg.callbacks.eval.max_problems]).metrics
    metrics["train/sft_loss"] = losses[-1] if losses else float("nan")
    merge = cfg.model.get("merge_lora", False)
    final_dir = save_final_model(model, tok, run_dir, merge, cfg.model.get("push_to_hub"))
    summary = RunSummary.from_config(
        cfg,
        status=COMPLETED,
        task=task.name,
        metrics=metrics,
        wall_time_s=time.time() - t0,
        steps=sft.steps,
        final_model=str(final_dir),
    )
    return report_run(summary, run_dir, loggers=[])
