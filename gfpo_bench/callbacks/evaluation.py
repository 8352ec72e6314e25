"""Evaluation callback: greedy accuracy / pass@1 on a held-out split, every N steps and at the end.

Logs through every attached logger (W&B and CSV), keeps the latest metrics on the module for
`summary.json`, and puts a table of sample completions into W&B under a step-unique key
(`samples/<task>/step_<N>`), so tables are never overwritten.
"""

from __future__ import annotations

import logging
import time

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from gfpo_bench.eval.evaluate import evaluate_policy
from gfpo_bench.policies.model import ModelPolicy
from gfpo_bench.tasks.base import Task

log = logging.getLogger(__name__)


class EvalCallback(L.Callback):
    def __init__(
        self,
        task: Task | None = None,  # default: the module's training task
        split: str = "val",
        every_n_steps: int = 50,
        max_problems: int | None = None,
        batch_size: int = 100,
        max_new_tokens: int | None = None,  # default: the sampler's
        table_rows: int = 8,
        at_start: bool = True,
    ) -> None:
        self.task, self.split, self.every = task, split, every_n_steps
        self.max_problems, self.batch_size, self.max_new_tokens = max_problems, batch_size, max_new_tokens
        self.table_rows, self.at_start = table_rows, at_start
        self.last_step = -1
        self.history: list[dict] = []

    def evaluate(self, trainer: L.Trainer, module) -> dict[str, float]:
        task = self.task or module.task
        problems = task.problems(self.split)[: self.max_problems]
        policy = ModelPolicy(
            module.model,
            module.tok,
            task,
            module.sampler.formatter,
            self.max_new_tokens or module.sampler.gen.max_new_tokens,
            self.batch_size,
        )
        t0 = time.time()
        result = evaluate_policy(policy, task, problems, prefix="val")
        metrics = dict(result.metrics)
        metrics["val/tokens_generated"] = float(module.tokens_generated)
        step = trainer.global_step
        for lg in trainer.loggers:
            lg.log_metrics(metrics, step=step)
            if isinstance(lg, WandbLogger) and self.table_rows:
                rows = [
                    [r["prompt"], r["completion"], r["extracted"], r["correct"], r["format_ok"], str(r["step_scores"])]
                    for r in result.records[: self.table_rows]
                ]
                lg.log_table(
                    key=f"samples/{task.name}/step_{step}",
                    columns=["prompt", "completion", "extracted", "correct", "format_ok", "step_scores"],
                    data=rows,
                )
        module.final_metrics = {**getattr(module, "final_metrics", {}), **metrics}
        self.history.append({"step": step, **metrics})
        self.last_step = step
        shown = {k: round(v, 4) for k, v in metrics.items() if k.endswith(("accuracy", "pass@1"))}
        log.info("eval @ step %d (%s, %d problems, %.1fs): %s", step, self.split, len(problems), time.time() - t0, shown)
        return metrics

    def on_train_start(self, trainer, module) -> None:
        if self.at_start and trainer.global_step == 0:
            self.evaluate(trainer, module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.every and trainer.global_step % self.every == 0 and trainer.global_step != self.last_step:
            self.evaluate(trainer, module)

    def on_train_end(self, trainer, module) -> None:
        if trainer.global_step != self.last_step:
            self.evaluate(trainer, module)
