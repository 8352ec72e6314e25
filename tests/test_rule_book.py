"""One rule book: a config rule is written once, in gfpo_bench/config_schema.py, and said one way.

The validator (validation.py) checks a composed config against the book; a constructor checks its
own arguments with `require(key, value)` / `require_rule(rule, ...)`. Two kinds of test hold that:

- no module writes a rule of the book out by hand again: the source is parsed with `ast` and a
  `raise` is reported when the `if` guarding it compares a knob of the table (`beta`, `self.k`,
  `noise`, ...) with a number or with another knob, or when its message says that a knob "must be"
  something (the old `raise ValueError(f"loss.beta must be > 0 ...")`). The scan is itself tested on
  the hand-written checks `require` replaced, so it cannot pass by seeing nothing;
- a constructor given a bad value raises the validator's own line for that key, word for word.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import TASK, compose_cfg
from omegaconf import DictConfig

from gfpo_bench.config_schema import PAIRING_RULES, RULES, STAGE_RULES, rule_for
from gfpo_bench.errors import ConfigError
from gfpo_bench.validation import validate

PKG = Path(__file__).resolve().parents[1] / "gfpo_bench"
BOOK = {"config_schema.py", "validation.py"}  # where rules are written and applied to a config
# a table knob's name: the last part of a key ("loss.beta" -> beta), as a constructor argument names it
KNOBS = {k.rpartition(".")[2] for k in RULES} | set(PAIRING_RULES) | set(STAGE_RULES)
# the same name for something that is not that knob: (file under gfpo_bench/, name) -> why
NOT_A_KNOB = {
    ("eval/passk.py", "k"): "pass@k's k, not sampler.k",
    ("eval/cli.py", "k"): "the eval CLI's pass@k list `ks`, not sampler.k",
}
SAYS_A_RULE = re.compile(r"\b(must\b|is not one of\b|in [\[(]|[<>]=)")


def _knob(node: ast.AST) -> str | None:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    return name if name in KNOBS else None


def _is_bound(node: ast.AST) -> bool:
    """A literal a range or a choice is written with: a number, -number, None, a string, or a
    tuple/list/set of them (`x not in (0.0, -1.0)`, `form not in ("sum", "mean")`)."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts) and all(_is_bound(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool)


def _message(node: ast.Raise) -> str:
    """The literal text of a raise's message; an f-string's fields become {}."""
    parts = []
    for n in ast.walk(node.exc) if node.exc is not None else ():
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            parts.append(n.value)
        elif isinstance(n, ast.FormattedValue):
            parts.append("{}")
    return "".join(parts)


def hand_written_rules(source: str, where: str) -> list[str]:
    """One line per rule of the book that `source` checks by hand before a `raise`."""
    skip = {name for (file, name) in NOT_A_KNOB if file == where}
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and any(isinstance(s, ast.Raise) for s in node.body):  # the guard itself
            for cmp in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
                sides = [cmp.left, *cmp.comparators]
                knobs = [k for k in map(_knob, sides) if k and k not in skip]
                if knobs and (len(knobs) > 1 or any(_is_bound(s) for s in sides)):
                    found.append(f"{where}:{node.lineno}: compares {', '.join(knobs)} before a raise")
        if isinstance(node, ast.Raise):
            text = _message(node)
            for knob in sorted(KNOBS - skip):
                hit = re.search(rf"\b{re.escape(knob)}\b[^:;]*", text)
                if hit and SAYS_A_RULE.search(hit.group(0)):
                    found.append(f"{where}:{node.lineno}: the message states {knob}'s rule: {text!r}")
                    break
    return found


def test_no_module_rewrites_a_rule_of_the_book() -> None:
    files = [p for p in sorted(PKG.rglob("*.py")) if p.name not in BOOK or p.parent != PKG]
    assert len(files) > 50  # the scan sees the package
    found = [line for p in files for line in hand_written_rules(p.read_text(), str(p.relative_to(PKG)))]
    assert not found, "use config_schema.require(key, value) instead:\n" + "\n".join(found)


# hand-written checks `require` replaced (as they were), and two that are not rules of the book
REWRITTEN = {
    "loss.beta": 'if not beta > 0:\n    raise ValueError(f"loss.beta must be > 0, got {beta}")',
    "loss.form": 'if form not in ("sum", "mean"):\n    raise ValueError("bad form")',
    "dpo-positive": 'if positive_lambda > 0 and not use_reference:\n    raise ValueError("needs a reference")',
    "branch room": 'if siblings is None and gen.k <= roots:\n    raise ConfigError("no room")',
    "sampler.k": 'if self.k < 1 or self.max_new_tokens < 1:\n    raise ValueError("too small")',
    "reward.noise": 'if not 0.0 <= noise <= 1.0:\n    raise ValueError("reward.noise out of range")',
    "reward.wrong_final": 'if wrong_final not in (0.0, -1.0):\n    raise ValueError("0 or -1")',
    "dynamic_max_rounds": 'if dynamic_max_rounds < 0:\n    raise ValueError("negative")',
    "eval": 'if x:\n    raise ValueError(f"callbacks.eval: batch_size must be >= 1, got {batch_size}")',
    "pairing.eps": 'if not eps >= 0:\n    raise ConfigError(f"pairing {name}: eps must be >= 0")',
    "task.limit": 'if limit is not None and limit < 0:\n    raise ValueError("limit must be >= 0")',
    "split sizes": 'if small:\n    raise ValueError(f"{self.name}: split sizes must be >= 1, got {small}")',
    "model.dtype": 'if dtype not in DTYPES:\n    raise ModelLoadError(f"model.dtype={dtype!r} is not one of {x}")',
    "schedule": 'if frac is not None and max_tokens is None:\n    raise ConfigError("needs a budget")',
}
NOT_RULES = {
    "require": 'require("loss.beta", beta)\nrequire_rule(branch_leaves_room, k, roots, siblings)',
    "other knobs": 'if not 2 <= min_operands <= max_operands:\n    raise ValueError("need 2 <= min_operands")',
}


@pytest.mark.parametrize("source", REWRITTEN.values(), ids=REWRITTEN.keys())
def test_the_scan_sees_a_rewritten_rule(source: str) -> None:
    assert hand_written_rules(source, "fake.py")


@pytest.mark.parametrize("source", NOT_RULES.values(), ids=NOT_RULES.keys())
def test_the_scan_leaves_other_code_alone(source: str) -> None:
    assert hand_written_rules(source, "fake.py") == []


def test_every_required_key_has_a_rule() -> None:
    """A `require("key", ...)` with a literal key names a rule of the table (not a typo)."""
    keys = []
    for p in PKG.rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "require" and n.args:
                if isinstance(n.args[0], ast.Constant):
                    keys.append(n.args[0].value)
    assert len(keys) > 20
    for key in keys:
        rule_for(key)  # KeyError names the key


def test_the_dtypes_a_model_loads_are_the_tables_choices() -> None:
    from gfpo_bench.models.loading import DTYPES

    assert set(DTYPES) == set(RULES["model.dtype"].values)


# ---- a constructor refuses what the validator refuses, in the validator's words ----
def _module(c: DictConfig):
    from gfpo_bench.module import PairwiseRLModule

    none = dict.fromkeys(("model", "tokenizer", "task", "sampler", "reward", "schedule", "loss", "optimizer"))
    return PairwiseRLModule(**none, dynamic_max_rounds=c.module.dynamic_max_rounds)


def _sft_mix(c: DictConfig):
    from gfpo_bench.sft_mix import SupervisedMix

    return SupervisedMix(coef=c.module.sft_mix.coef)


def _eval(**kw):
    from gfpo_bench.callbacks.evaluation import EvalCallback

    return EvalCallback(**kw)


def _gen(**kw):
    from gfpo_bench.sampling.base import GenerationConfig

    return GenerationConfig(**kw)


def _branch(c: DictConfig):
    from gfpo_bench.sampling.branch import BranchSampler

    s = c.sampler
    return BranchSampler(None, None, 256, k=s.k, roots=s.roots, branches=s.branches, siblings=s.siblings)


def _loss(c: DictConfig):
    from gfpo_bench.loss import PairwiseLoss

    keys = ("beta", "form", "use_reference", "positive_lambda")
    return PairwiseLoss(**{k: c.loss[k] for k in keys})


def _pairing(knob: str):
    def build(c: DictConfig):
        from gfpo_bench.pairing import build_pairing

        return build_pairing(c.pairing.name, **{knob: c.pairing[knob]})

    return build


def _reward(knob: str):
    def build(c: DictConfig):
        from gfpo_bench.rewards.reward import Reward

        return Reward(**{knob: c.reward[knob]})

    return build


def _schedule(c: DictConfig):
    from gfpo_bench.pairing import build_pairing
    from gfpo_bench.schedule import PairingSchedule, Stage

    second = c.schedule.second
    return PairingSchedule(
        [
            Stage(build_pairing("srpo"), "srpo", key="first"),
            Stage(build_pairing("gfpo"), "gfpo", second.start_step, second.start_tokens_frac, key="second"),
        ],
        max_tokens=c.budget.max_tokens,
    )


def _gsm8k(knob: str):
    def build(c: DictConfig):
        from gfpo_bench.tasks.math_bench import GSM8KTask

        return GSM8KTask(**{knob: c.task[knob]})

    return build


def _code(knob: str):
    def build(c: DictConfig):
        from gfpo_bench.tasks.code_synth import CodeSynthTask

        return CodeSynthTask(**{knob: c.task[knob]})

    return build


def _arith(knob: str):
    def build(c: DictConfig):
        from gfpo_bench.tasks.arith import ArithTask

        return ArithTask(**{knob: c.task[knob]})

    return build


def _execute(c: DictConfig):
    from gfpo_bench.sandbox import execute

    return execute("pass", timeout_s=c.task.timeout_s, memory_mb=c.task.memory_mb)


def _resume(c: DictConfig):
    from gfpo_bench.warmstart import resume_checkpoint

    return resume_checkpoint(Path("/nonexistent-run-dir"), c.resume)


def _wandb_mode(c: DictConfig):
    from gfpo_bench.loggers import resolve_wandb_mode

    return resolve_wandb_mode(c.logger.wandb.mode)


def _dtype(c: DictConfig):
    from gfpo_bench.models.loading import load_model_and_tokenizer

    return load_model_and_tokenizer("/nonexistent-model", dtype=c.model.dtype)


def _lora(c: DictConfig):
    from gfpo_bench.models.lora import apply_lora

    return apply_lora(None, c.model.lora)


def _data(c: DictConfig):
    from gfpo_bench.datamodule import PromptDataModule

    return PromptDataModule(TASK, c.prompts_per_step, 0)


def _take(c: DictConfig):
    from gfpo_bench.tasks.bench_data import take

    return take([1, 2], c.task.limit)


def _seeded_split(c: DictConfig):
    from gfpo_bench.tasks.bench_data import seeded_split

    return seeded_split(4, c.task.val_size, 0)


# (overrides, the constructor that must refuse them, given the composed config); the last override
# is the bad value, and the validator's line must name its key
REFUSED: list[tuple[list[str], Callable[[DictConfig], object]]] = [
    (["loss.beta=0.0"], _loss),
    (["loss.form=median"], _loss),
    (["loss.positive_lambda=-1.0"], _loss),
    (["sampler.k=0"], lambda c: _gen(k=c.sampler.k)),
    (["sampler.temperature=0.0"], lambda c: _gen(temperature=c.sampler.temperature)),
    (["sampler.top_p=1.5"], lambda c: _gen(top_p=c.sampler.top_p)),
    (["sampler.max_new_tokens=0"], lambda c: _gen(max_new_tokens=c.sampler.max_new_tokens)),
    (["sampler=branch", "sampler.roots=0"], _branch),
    (["sampler=branch", "sampler.branches=0"], _branch),
    (["sampler=branch", "sampler.siblings=0"], _branch),
    (["reward.noise=1.5"], _reward("noise")),
    (["reward.wrong_final=0.5"], _reward("wrong_final")),
    (["reward.process_noise=-0.1"], _reward("process_noise")),
    (["callbacks.eval.sampled_n=-1"], lambda c: _eval(sampled_n=c.callbacks.eval.sampled_n)),
    (["callbacks.eval.every_n_steps=-1"], lambda c: _eval(every_n_steps=c.callbacks.eval.every_n_steps)),
    (["callbacks.eval.batch_size=0"], lambda c: _eval(batch_size=c.callbacks.eval.batch_size)),
    (["callbacks.eval.table_rows=-1"], lambda c: _eval(table_rows=c.callbacks.eval.table_rows)),
    (["prompts_per_step=0"], _data),
    (["module.dynamic_max_rounds=-1"], _module),
    (["module.sft_mix.coef=-0.1"], _sft_mix),
    (["pairing.sft_coef=-1.0"], _pairing("sft_coef")),
    (["pairing.max_pairs_per_group=0"], _pairing("max_pairs_per_group")),
    (["pairing=gfpo", "pairing.eps=-1.0"], _pairing("eps")),
    (["pairing=gfpo", "pairing.min_prefix_tokens=-1"], _pairing("min_prefix_tokens")),
    (["pairing=gfpo", "pairing.min_prefix_frac=1.5"], _pairing("min_prefix_frac")),
    (["pairing=gfpo", "pairing.prefix_rule=longest"], _pairing("prefix_rule")),
    (["pairing=random", "pairing.eps=-1.0"], _pairing("eps")),
    (["pairing=top2", "pairing.eps=-1.0"], _pairing("eps")),
    (["pairing=vapo", "pairing.eps=-1.0"], _pairing("eps")),
    (["pairing=grpo", "pairing.scale_std=maybe"], _pairing("scale_std")),
    (["pairing=grpo", "pairing.aggregation=median"], _pairing("aggregation")),
    (["pairing=grpo", "pairing.kl_coef=-1.0"], _pairing("kl_coef")),
    (["pairing=grpo", "pairing.clip_eps_low=1.5"], _pairing("clip_eps_low")),
    (["pairing=grpo", "pairing.clip_eps_high=0.0"], _pairing("clip_eps_high")),
    (["pairing=grpo", "pairing.max_new_tokens=0"], _pairing("max_new_tokens")),
    (["schedule=srpo_to_gfpo", "schedule.second.start_step=-1"], _schedule),
    (["schedule=srpo_to_gfpo", "schedule.second.start_tokens_frac=1.5"], _schedule),
    (["task.n_train=0"], _arith("n_train")),
    (["task.n_val=0"], _arith("n_val")),
    (["task.teacher_slip=1.5"], _arith("teacher_slip")),
    (["task.commute=1.5"], _arith("commute")),
    (["task=gsm8k", "task.limit=0"], _gsm8k("limit")),
    (["task=gsm8k", "task.limit=0"], _take),
    (["task=gsm8k", "task.val_size=-1"], _gsm8k("val_size")),
    (["task=gsm8k", "task.val_size=-1"], _seeded_split),
    (["task=code", "task.timeout_s=0.0"], _code("timeout_s")),
    (["task=code", "task.timeout_s=0.0"], _execute),
    (["task=code", "task.memory_mb=0"], _code("memory_mb")),
    (["task=code", "task.memory_mb=0"], _execute),
    (["task=code", "task.workers=0"], _code("workers")),
    (["resume=sometimes"], _resume),
    (["logger.wandb.mode=sometimes"], _wandb_mode),
    (["model.dtype=float8"], _dtype),
    (["model.lora.r=-1"], _lora),
    # rules over several keys (config_schema.CROSS_RULES)
    (["loss.use_reference=false"], _loss),
    (["sampler=branch", "sampler.k=2", "sampler.roots=2"], _branch),
    (["schedule=srpo_to_gfpo", "schedule.second.start_tokens_frac=0.5"], _schedule),
]


@pytest.mark.parametrize(
    ("overrides", "build"), REFUSED, ids=[" ".join(o[-2:]) + f" {b.__name__}" for o, b in REFUSED]
)
def test_a_constructor_refuses_in_the_validators_words(overrides, build, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)  # else resolve_wandb_mode takes the environment's
    cfg = compose_cfg(overrides, tmp_path / "run")
    with pytest.raises(ConfigError) as by_validator:
        validate(cfg)
    key = overrides[-1].partition("=")[0]
    assert key in str(by_validator.value)  # the validator refuses that very value
    with pytest.raises(ConfigError) as by_constructor:
        build(cfg)
    assert str(by_constructor.value) == str(by_validator.value)


def test_the_cases_cover_every_rule_a_constructor_requires() -> None:
    """Each literal `require("key", ...)` key in gfpo_bench has a case above (f-string keys: their knob)."""
    covered = {o[-1].partition("=")[0] for o, _ in REFUSED}
    missing = []
    for p in PKG.rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "require" and n.args:
                key = _message(ast.Raise(exc=n.args[0]))  # an f-string's fields match any text
                pattern = re.compile(".+".join(map(re.escape, key.split("{}"))))
                if not any(pattern.fullmatch(c) for c in covered):
                    missing.append(f"{p.relative_to(PKG)}:{n.lineno}: {key}")
    assert not missing, "add a case to REFUSED for:\n" + "\n".join(sorted(missing))
