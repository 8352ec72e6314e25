"""The rule book: every range and every rule across keys of the config, written once.

`RULES` maps a key of the composed config to its type and range (`Num`, `Choice`, `Bool`);
`PAIRING_RULES` apply to every pairing config (`pairing`, and each stage of a `schedule`),
`STAGE_RULES` to each schedule stage. A key a config does not have is skipped, so one table serves
every option of a group. A comment or `hint` says why a bound is where it is when that is not obvious.
The rules over several keys that a constructor can also see (`positive_lambda_needs_reference`, ...)
are functions of the values, below the table.

Two callers, one wording: `gfpo_bench/validation.py` checks a composed config against the book before
anything is built, and each constructor that takes one of these values checks it with `require(key,
value)` (a rule over several keys: `require_rule(rule, *values)`), so an object built from Python
refuses the same values with the same `ConfigError` line, `<key>=<value>: <problem> (<hint>)`.
tests/test_rule_book.py fails when a constructor writes a rule of the book out by hand again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gfpo_bench.errors import ConfigError


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
    "reward.process_noise": Num(ge=0, le=1, hint="the probability of flipping the sign of a step's score"),
    "task.n_train": COUNT,
    "task.n_val": COUNT,
    "task.n_test": COUNT,
    "task.teacher_slip": Num(ge=0, le=1, hint="the probability of a dropped carry in the SFT data"),
    "module.sft_mix.coef": Num(ge=0, hint="0: no supervised term"),
    "task.commute": Num(ge=0, le=1, hint="the probability that a worked addition is written operand-swapped"),
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
    "model.warm_start": Choice(("shipped", "build"), hint="shipped: the package's reference warm start"),
    "model.lora.r": Num(ge=0, integer=True, hint="adapter rank; 0: no adapters"),
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
    "prefix_rule": Choice(("lineage", "fraction"), hint="gfpo's pairs: gfpo_bench/pairing/gfpo.py"),
    "min_prefix_tokens": Num(ge=0, integer=True),
    "min_prefix_frac": Num(ge=0, le=1),
    # grpo (gfpo_bench/grpo.py)
    "scale_std": Bool(hint="false with aggregation=constant: Dr. GRPO"),
    "aggregation": Choice(("sequence", "token", "constant")),
    "kl_coef": Num(ge=0, hint="0: no reference pass"),
    "clip_eps_low": Num(gt=0, lt=1),
    "clip_eps_high": Num(gt=0),
    "max_new_tokens": COUNT,
}
STAGE_RULES: dict[str, Rule] = {
    "start_step": Num(ge=0, integer=True),
    "start_tokens_frac": Num(gt=0, le=1, null=True, hint="a fraction of budget.max_tokens"),
}


def rule_for(key: str) -> Rule:
    """The rule of a full config key: "loss.beta"; a pairing knob under any prefix ("pairing.eps",
    "schedule.second.pairing.eps"); a stage knob ("schedule.second.start_step")."""
    if key in RULES:
        return RULES[key]
    head, _, last = key.rpartition(".")
    if (head == "pairing" or head.endswith(".pairing")) and last in PAIRING_RULES:
        return PAIRING_RULES[last]
    if head.startswith("schedule.") and head.count(".") == 1 and last in STAGE_RULES:
        return STAGE_RULES[last]
    raise KeyError(f"{key!r} has no rule in gfpo_bench/config_schema.py")


def show(v: Any) -> str:
    """A value as it is written on the command line: null, true, 'text', 0.5."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    return repr(v) if isinstance(v, str) else str(v)


def violation(key: str, value: Any, rule: Rule | None = None) -> str | None:
    """The one line that says `value` breaks the rule of `key`, or None if it keeps it."""
    rule = rule or rule_for(key)
    problem = rule.problem(value)
    if problem is None:
        return None
    return f"{key}={show(value)}: {problem}" + (f" ({rule.hint})" if rule.hint else "")


def require(key: str, value: Any, rule: Rule | None = None) -> Any:
    """`value` if it keeps the rule of `key` (see `rule_for`), else `ConfigError(violation(...))`.

    >>> require("reward.noise", 0.1)
    0.1
    >>> require("reward.noise", 1.5)
    Traceback (most recent call last):
    ...
    gfpo_bench.errors.ConfigError: reward.noise=1.5: must be in [0, 1] (the probability of flipping a path's R_final)
    """
    message = violation(key, value, rule)
    if message:
        raise ConfigError(message)
    return value


# ---- rules over several keys that a constructor also holds the values of: each returns what is
# wrong (one line, naming the keys) or None. validation.py applies them to the composed config.
def positive_lambda_needs_reference(positive_lambda: float, use_reference: bool) -> str | None:
    """loss.positive_lambda > 0 (the DPO-Positive penalty) needs loss.use_reference."""
    if positive_lambda > 0 and not use_reference:
        return (
            "loss.positive_lambda needs loss.use_reference=true (the DPO-Positive penalty keeps the "
            "better path above the reference; or set loss.positive_lambda=0)"
        )
    return None


def branch_leaves_room(k: int, roots: int, siblings: int | None) -> str | None:
    """sampler=branch without a fixed `siblings`: the k paths are `roots` roots plus continuations."""
    if siblings is None and k <= roots:
        return (
            f"sampler.k={k} leaves no room for continuations of sampler.roots={roots}: raise k or lower roots"
        )
    return None


def token_fraction_needs_budget(
    stage: str, start_tokens_frac: float | None, max_tokens: int | None
) -> str | None:
    """A schedule stage that starts at a fraction of budget.max_tokens needs that budget."""
    if start_tokens_frac is not None and max_tokens is None:
        return (
            f"schedule.{stage}.start_tokens_frac={show(start_tokens_frac)} needs budget.max_tokens "
            "(a fraction of what?)"
        )
    return None


CROSS_RULES: tuple[Callable[..., str | None], ...] = (
    positive_lambda_needs_reference,
    branch_leaves_room,
    token_fraction_needs_budget,
)


def require_rule(rule: Callable[..., str | None], *values: Any) -> None:
    """`ConfigError` with the message of a rule over several keys (one of `CROSS_RULES`) if it fails."""
    message = rule(*values)
    if message:
        raise ConfigError(message)
