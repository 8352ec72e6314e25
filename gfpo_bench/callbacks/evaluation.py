"""Evaluation callback: greedy accuracy / pass@1 on a held-out split, every N steps and at the end,
and the same metric when sampling at the training temperature (`sampled_n` samples per problem:
`val/math/sampled_accuracy`, `val/code/sampled_pass@1`). RL optimises the sampled number; the greedy
one is what a user deploys. Sampling for evaluation runs on its own seeded RNG stream, so it neither
depends on nor disturbs the training run's sampling.

Logs through every attached logger (W&B and CSV), keeps the latest metrics and the history of
evaluations for `summary.json` (`summary_fields()`), and puts a table of sample completions into
W&B under a step-unique key (`samples/<task>/step_<N>`), so tables are never overwritten. Table
rows carry the components of the run's own `Reward` (R_final, R_process, R_format, R;
`Reward.components`: reward noise not applied).

`extra_tasks` are evaluated beside the training task (e.g. `code` on an `arith` run), each under
its own names (`val/<task>/...`); `val/math/accuracy` and `val/code/pass@1` pool all evaluated
tasks of that kind, weighted by problems. They are task configs composed by Hydra, one override
per task: `+task@callbacks.eval.extra_tasks.code=code` (a name -> task dict, instantiated with the
callback).

The history of evaluations, the latest metrics and the step of the last evaluation are the
callback's `state_dict`, which Lightning keeps in every checkpoint, so a resumed run reports them all.

Distributed (DDP): global rank 0 evaluates and logs; the other ranks wait for its metrics (a
broadcast) and keep the same history, so every rank holds the same state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger

from gfpo_bench.callbacks import check_extra_tasks
from gfpo_bench.config_schema import require
from gfpo_bench.distributed import weights_sha256
from gfpo_bench.errors import ConfigError
from gfpo_bench.eval.evaluate import EvalResult, evaluate_policy
from gfpo_bench.policies.model import ModelPolicy
from gfpo_bench.sampling.base import rollouts_from_texts
from gfpo_bench.tasks.base import Task

log = logging.getLogger(__name__)

POOLED = ("math", "code")  # val/<kind>/<metric> keys pooled over tasks
COLUMNS = [
    "prompt",
    "completion",
    "extracted",
    "correct",
    "detail",
    "format_ok",
    "step_scores",
    "r_final",
    "r_process",
    "r_format",
    "r_total",
]


def pool_metrics(results: list[EvalResult]) -> dict[str, float]:
    """All tasks' metrics; `<split>/math/...` and `<split>/code/...` averaged over tasks by problems.

    >>> a = EvalResult({"val/math/accuracy": 1.0, "val/a/accuracy": 1.0}, [{"uid": "a1"}])
    >>> b = EvalResult({"val/math/accuracy": 0.0, "val/b/accuracy": 0.0}, [{"uid": "b1"}, {"uid": "b2"}])
    >>> round(pool_metrics([a, b])["val/math/accuracy"], 4), pool_metrics([a, b])["val/b/accuracy"]
    (0.3333, 0.0)
    """
    metrics: dict[str, float] = {}
    sums: dict[str, tuple[float, int]] = {}
    for res in results:
        n_problems = len({r["uid"] for r in res.records})
        for key, value in res.metrics.items():
            if key.split("/")[1] in POOLED:
                s, n = sums.get(key, (0.0, 0))
                sums[key] = (s + value * n_problems, n + n_problems)
            else:
                metrics[key] = value
    metrics.update({k: s / max(1, n) for k, (s, n) in sums.items()})
    return metrics


def reward_components(module, task: Task, problems: list, records: list[dict]) -> list[list[float]]:
    """[R_final, R_process, R_format, R] of each evaluated record (record i answers problems[i]), as
    the run's `Reward` scores them (`Reward.components`: the checked correctness and step scores of
    the records, no reward noise)."""
    rollouts = rollouts_from_texts(
        module.tok, module.sampler.formatter, task, problems, [[r["completion"]] for r in records]
    )
    correct = torch.tensor([bool(r["correct"]) for r in records], dtype=torch.bool)  # [N]
    out = module.reward.components(rollouts, correct, [r["step_scores"] for r in records])
    return torch.stack([out.final, out.process, out.format, out.total], dim=1).tolist()  # [N, 4]


class EvalCallback(L.Callback):
    """Defaults equal conf/callbacks/default.yaml (`callbacks.eval`)."""

    def __init__(
        self,
        task: Task | None = None,  # default: the module's training task
        split: str = "val",
        every_n_steps: int = 50,  # 0: only at the start and the end
        max_problems: int | None = 500,  # None: the whole split
        batch_size: int = 100,  # problems per generate call
        max_new_tokens: int | None = None,  # default: the sampler's
        table_rows: int = 8,  # rows of the W&B samples table per task; 0: no table
        at_start: bool = True,
        extra_tasks: Mapping[str, Task] | None = None,  # name -> task, evaluated beside `task`
        sampled_n: int = 4,  # samples per problem at the sampler's temperature / top_p; 0: greedy only
        sample_seed: int = 1234,  # the evaluation's own sampling seed (same model -> same numbers)
    ) -> None:
        require("callbacks.eval.sampled_n", sampled_n)  # ranges: config_schema.py
        require("callbacks.eval.every_n_steps", every_n_steps)
        require("callbacks.eval.batch_size", batch_size)
        require("callbacks.eval.table_rows", table_rows)
        check_extra_tasks(extra_tasks)
        self.extra_tasks: dict[str, Task] = dict((extra_tasks or {}).items())
        for name, t in self.extra_tasks.items():
            if not isinstance(t, Task):
                raise ConfigError(f"callbacks.eval.extra_tasks.{name}: {type(t).__name__} is not a Task")
        self.task, self.split, self.every = task, split, every_n_steps
        self.max_problems, self.batch_size, self.max_new_tokens = max_problems, batch_size, max_new_tokens
        self.table_rows, self.at_start = table_rows, at_start
        self.sampled_n, self.sample_seed = sampled_n, sample_seed
        self.last_step = -1  # global step of the last evaluation
        self.history: list[dict] = []  # every evaluation: {"step": N, **metrics}
        self.latest_metrics: dict[str, float] = {}  # each metric's latest value (summary.json `metrics`)
        self.start_weights: str | None = None  # hash of the weights step 0 evaluates (summary.json)

    def summary_fields(self) -> dict:
        """This callback's part of summary.json (see `gfpo_bench.callbacks.summary_fields`)."""
        return {
            "metrics": dict(self.latest_metrics),
            "eval_history": [dict(h) for h in self.history],
            "warm_start_weights": self.start_weights,
        }

    def record(self, step: int, metrics: dict[str, float]) -> None:
        self.latest_metrics.update(metrics)
        self.history.append({"step": step, **metrics})
        self.last_step = step

    def evaluate(self, trainer: L.Trainer, module) -> dict[str, float]:
        if trainer.world_size == 1:
            return self.evaluate_here(trainer, module)
        metrics = self.evaluate_here(trainer, module) if trainer.is_global_zero else None
        metrics = trainer.strategy.broadcast(metrics, src=0)  # the others wait for rank 0's numbers
        if not trainer.is_global_zero:
            self.record(trainer.global_step, metrics)
        return metrics

    def evaluate_here(self, trainer: L.Trainer, module) -> dict[str, float]:
        t0, step = time.time(), trainer.global_step
        results = [
            self.evaluate_task(trainer, module, task)
            for task in [self.task or module.task, *self.extra_tasks.values()]
        ]
        metrics = pool_metrics(results)
        metrics["val/tokens_generated"] = float(module.tokens_generated)
        for lg in trainer.loggers:
            lg.log_metrics(metrics, step=step)
        self.record(step, metrics)
        shown = {
            k: round(v, 4)
            for k, v in metrics.items()
            if k.endswith(("accuracy", "pass@1")) and "/math/" not in k
        }
        n = sum(len(r.records) for r in results)
        log.info("eval @ step %d (%s, %d problems, %.1fs): %s", step, self.split, n, time.time() - t0, shown)
        return metrics

    def evaluate_task(self, trainer: L.Trainer, module, task: Task) -> EvalResult:
        """Greedy completions on `task`'s split, scored; a W&B table of the first rows."""
        data = trainer.datamodule
        problems = (
            data.eval_problems(task, self.split, self.max_problems)
            if data is not None
            else task.problems(self.split)[: self.max_problems]
        )
        result = evaluate_policy(self.policy(module, task), task, problems, prefix="val")
        if self.sampled_n:
            result.metrics.update(self.sampled_metrics(module, task, problems))
        wandb = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if wandb and self.table_rows:
            shown = result.records[: self.table_rows]
            components = reward_components(module, task, problems[: len(shown)], shown)
            rows = [
                [
                    r["prompt"],
                    r["completion"],
                    r["extracted"],
                    r["correct"],
                    r["detail"],
                    r["format_ok"],
                    str(r["step_scores"]),
                    *c,
                ]
                for r, c in zip(shown, components)
            ]
            for lg in wandb:
                lg.log_table(
                    key=f"samples/{task.name}/step_{trainer.global_step}", columns=COLUMNS, data=rows
                )
        return result

    def policy(self, module, task: Task, sampled: bool = False) -> ModelPolicy:
        """The module's model as a policy on `task`: greedy, or at the sampler's temperature / top_p."""
        gen = module.sampler.gen
        return ModelPolicy(
            module.model,
            module.tok,
            task,
            module.sampler.formatter,
            self.max_new_tokens or gen.max_new_tokens,
            self.batch_size,
            **({"temperature": gen.temperature, "top_p": gen.top_p, "greedy": False} if sampled else {}),
        )

    def sampled_metrics(self, module, task: Task, problems: list) -> dict[str, float]:
        """Accuracy (pass@1) over `sampled_n` samples per problem at the training temperature."""
        policy = self.policy(module, task, sampled=True)
        cuda = [module.device.index or 0] if module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.sample_seed)
            sampled = evaluate_policy(policy, task, problems, prefix="val", n=self.sampled_n)
        out = {}
        for key, value in sampled.metrics.items():
            split, group, name = key.split("/", 2)
            if name in ("accuracy", "pass@1"):
                out[f"{split}/{group}/sampled_{name}"] = value
        return out

    def state_dict(self) -> dict:  # in every checkpoint (Lightning saves callbacks' state)
        return {
            "history": [dict(h) for h in self.history],
            "latest_metrics": dict(self.latest_metrics),
            "last_step": self.last_step,
            "start_weights": self.start_weights,
        }

    def load_state_dict(self, state: dict) -> None:
        self.history, self.last_step = [dict(h) for h in state["history"]], state["last_step"]
        # older checkpoints (before the callbacks owned their results) hold no latest metrics: merge them
        merged = {k: v for h in self.history for k, v in h.items() if k != "step"}
        self.latest_metrics = dict(state.get("latest_metrics", merged))
        self.start_weights = state.get("start_weights")

    def on_train_start(self, trainer, module) -> None:
        if trainer.global_step == 0 and self.start_weights is None:  # what every number starts from
            self.start_weights = weights_sha256(module.model.state_dict())
        if self.at_start and trainer.global_step == 0:
            self.evaluate(trainer, module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.every and trainer.global_step % self.every == 0 and trainer.global_step != self.last_step:
            self.evaluate(trainer, module)

    def on_train_end(self, trainer, module) -> None:
        if trainer.global_step != self.last_step:
            self.evaluate(trainer, module)
