"""The config's ranges, one entry per key: the table `gfpo_bench/validation.py` checks a run against.

`RULES` maps a key of the composed config to its type and range (`Num`, `Choice`, `Bool`);
`PAIRING_RULES` apply to every pairing config (`pairing`, and each stage of a `schedule`),
`STAGE_RULES` to each schedule stage. A key a config does not have is skipped, so one table serves
every option of a group. A comment or `hint` says why a bound is where it is when that is not obvious.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Num:
    """A number (never a bool) in a range; `integer`: whole numbers only; `null`: None allowed;
    `allow`: special values outside the range (e.g. -1 = no limit)."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    lt: float | None = None
    integer: bool = False
    null: bool = False
    allow: tuple = ()
    hint: str = ""

    def problem(self, v: Any) -> str | None:
        if v is None:
            return None if self.null else "must be set, not null"
        kind = "a whole number" if self.integer else "a number"
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or (self.integer and not isinstance(v, int))
        ):
            return f"must be {kind}"
        if v in self.allow:
            return None
        if math.isnan(v) or math.isinf(v):
            return f"must be {kind}, not {v}"
        lo = f"> {self.gt:g}" if self.gt is not None else f">= {self.ge:g}" if self.ge is not None else None
        hi = f"< {self.lt:g}" if self.lt is not None else f"<= {self.le:g}" if self.le is not None else None
        bad = (
            (self.gt is not None and not v > self.gt)
            or (self.ge is not None and not v >= self.ge)
            or (self.lt is not None and not v < self.lt)
            or (self.le is not None and not v <= self.le)
        )
        if not bad:
            return None
        if lo and hi:
            left = "(" if self.gt is not None else "["
            right = ")" if self.lt is not None else "]"
            low, high = (
                self.gt if self.gt is not None else self.ge,
                self.lt if self.lt is not None else self.le,
            )
            return f"must be in {left}{low:g}, {high:g}{right}"
        return f"must be {lo or hi}"


@dataclass(frozen=True)
class Choice:
    values: tuple
    hint: str = ""

    def problem(self, v: Any) -> str | None:
        ok = (
            any(v == c and type(v) is not bool for c in self.values) if v is not None else None in self.values
        )
        return None if ok else "must be one of " + ", ".join(str(c) for c in self.values)


@dataclass(frozen=True)
class Bool:
    hint: str = ""

    def problem(self, v: Any) -> str | None:
        return None if isinstance(v, bool) else "must be true or false"


Rule = Num | Choice | Bool
COUNT = Num(ge=1, integer=True)

RULES: dict[str, Rule] = {
    "seed": Num(integer=True),
    "stage": Choice(("rl", "sft")),
    "prompts_per_step": COUNT,
    "module.dynamic_max_rounds": Num(ge=0, integer=True, hint="0: no refill (DAPO drops groups only)"),
    "resume": Choice(("auto", "never")),
    "init_optimizer": Bool(),
    "debug": Bool(),
    "budget.max_tokens": Num(gt=0, integer=True, null=True, hint="null: no token budget"),
    "sampler.k": Num(ge=1, integer=True, hint="paths per prompt; a pairwise strategy needs at least 2"),
    "sampler.temperature": Num(gt=0, hint="for near-greedy sampling use a small value such as 0.1"),
    "sampler.top_p": Num(gt=0, le=1),
    "sampler.max_new_tokens": COUNT,
    "sampler.roots": COUNT,
    "sampler.branches": COUNT,
    "sampler.siblings": Num(ge=1, integer=True, null=True),
    "sampler.reuse_prefix": Bool(),
    "loss.beta": Num(gt=0, hint="at 0 the loss is a constant and nothing is learned"),
    "loss.form": Choice(("sum", "mean")),
    "loss.use_reference": Bool(),
    "loss.positive_lambda": Num(ge=0, hint="0 turns the DPO-Positive penalty off"),
    "optim.lr": Num(gt=0),
    "optim.weight_decay": Num(ge=0),
    "reward.weights.final": Num(),
    "reward.weights.process": Num(),
    "reward.weights.format": Num(),
    "reward.wrong_final": Choice((0.0, -1.0)),
    "reward.noise": Num(ge=0, le=1, hint="the probability of flipping a path's R_final"),
    "task.n_train": COUNT,
    "task.n_val": COUNT,
    "task.n_test": COUNT,
    "task.teacher_slip": Num(ge=0, le=1, hint="the probability of a dropped carry in the SFT data"),
    "task.val_size": Num(ge=0, integer=True),
    "task.limit": Num(ge=1, integer=True, null=True, hint="null: all problems"),
    "task.timeout_s": Num(gt=0),
    "task.memory_mb": COUNT,
    "task.workers": COUNT,
    "model.hidden": COUNT,
    "model.layers": COUNT,
    "model.heads": COUNT,
    "model.max_len": COUNT,
    "model.threads": Num(ge=1, integer=True, null=True),
    "model.dtype": Choice(("float32", "bfloat16", "float16")),
    "model.sft.steps": COUNT,
    "model.sft.batch_size": COUNT,
    "model.sft.lr": Num(gt=0),
    "model.sft.warmup": Num(ge=0, integer=True),
    "trainer.max_steps": Num(
        ge=1, integer=True, allow=(-1,), hint="-1: no step limit (needs budget.max_tokens)"
    ),
    "trainer.gradient_clip_val": Num(ge=0, null=True),
    "trainer.log_every_n_steps": COUNT,
    "callbacks.eval.every_n_steps": Num(ge=0, integer=True, hint="0: only at the start and the end"),
    "callbacks.eval.max_problems": Num(ge=1, integer=True, null=True),
    "callbacks.eval.sampled_n": Num(ge=0, integer=True),
    "callbacks.eval.max_new_tokens": Num(ge=1, integer=True, null=True),
    "callbacks.eval.split": Choice(("train", "val", "test")),
    "callbacks.eval.at_start": Bool(),
    "callbacks.eval.batch_size": COUNT,
    "callbacks.eval.table_rows": Num(ge=0, integer=True, hint="0: no W&B table of sample completions"),
    "callbacks.eval.sample_seed": Num(integer=True),
    "callbacks.checkpoint.every_n_train_steps": COUNT,
    "callbacks.pair_table.every_n_steps": Num(ge=0, integer=True, hint="0: no pair tables"),
    "callbacks.pair_table.rows": Num(ge=0, integer=True),
    "logger.wandb.mode": Choice(("auto", "online", "offline", "disabled")),
}
# each pairing config: `pairing`, and each stage's `pairing` of a schedule
PAIRING_RULES: dict[str, Rule] = {
    "eps": Num(ge=0),
    "max_pairs_per_group": Num(ge=1, integer=True, null=True, hint="null: every pair"),
    "sft_coef": Num(ge=0),
    "min_prefix_tokens": Num(ge=0, integer=True),
    "min_prefix_frac": Num(ge=0, le=1),
}
STAGE_RULES: dict[str, Rule] = {
    "start_step": Num(ge=0, integer=True),
    "start_tokens_frac": Num(gt=0, le=1, null=True, hint="a fraction of budget.max_tokens"),
}
