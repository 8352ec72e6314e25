"""Check a composed run config before anything is built: each mistake becomes one `ConfigError`.

The config's ranges, and the rules over several keys that a constructor also holds, live in one
rule book, `config_schema.py`; this module applies it to a composed config and the constructors
apply it to their arguments (`require`), with the same words. `gfpo-bench` calls it before the task
data, the model or the trainer are built (and `train.run` calls it again, for callers that skip the
CLI); `cli.py` turns its error into one line, `error: <what is wrong and what to do>`, exit 2.
Layers, cheapest first, so a mistyped number is reported before torch is even imported:

1. `config_schema.py`: a table, config key -> type and range, written once. Keys a config does not
   have (a task without `teacher_slip`, sampler=independent without `roots`) are skipped.
2. `CHECKS`: rules over several keys (those a constructor also checks come from `config_schema.py`),
   and values that are legal but make the run useless (K=1 with a pairwise strategy, all reward
   weights 0, `init_optimizer` without `init_from`).
3. Dry construction of the objects, without a model, for what the table does not state: the task
   (`task.max_operands=1`), the named registries (pairing, sampler, branch rule, process reward),
   the pairing schedule, the reward and the loss. Their errors are reported with the config key.
4. Files, checkpoints and hardware: the task's data files (the file and line of a malformed
   record), a local model path, `init_from` and the checkpoint a run resumes from (missing, empty,
   corrupt, another architecture), CUDA for trainer=gpu. (Paths are checked before layer 3, as
   they need no torch.)

Departs from the usual Hydra route, structured configs (dataclasses registered in the ConfigStore):
the groups hold different keys per option (a task's `_target_` decides its knobs, sampler=branch adds
its own), experiments and sweeps override freely, and Hydra reports a schema mismatch at compose time
as its own multi-line message with exit code 1. A dataclass per option would restate every YAML file;
the table states only the ranges, and options it does not know go through layer 3.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gfpo_bench.config_schema import (
    PAIRING_RULES,
    RULES,
    STAGE_RULES,
    Rule,
    branch_leaves_room,
    positive_lambda_needs_reference,
    token_fraction_needs_budget,
    violation,
)
from gfpo_bench.errors import ConfigError

_ABSENT = object()


def _get(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
    except Exception as e:  # noqa: BLE001  (??? values, unresolvable interpolations)
        raise ConfigError(f"{key}: {str(e).splitlines()[0]}") from None


def _apply(cfg: DictConfig, rules: dict[str, Rule], prefix: str = "") -> None:
    for key, rule in rules.items():
        full = f"{prefix}{key}"
        v = _get(cfg, full)
        if v is _ABSENT:
            continue
        message = violation(full, v, rule)
        if message:
            raise ConfigError(message)


def _pairing_prefixes(cfg: DictConfig) -> list[str]:
    sched = cfg.get("schedule")
    stages = [f"schedule.{k}." for k in sched.stage_order] if sched is not None else []
    return ["pairing.", *(s + "pairing." for s in stages)]


# ---- layer 2: rules over several keys, and legal but useless values ----
CHECKS: list[Callable[[DictConfig], str | None]] = []


def check(fn: Callable[[DictConfig], str | None]) -> Callable[[DictConfig], str | None]:
    CHECKS.append(fn)
    return fn


@check
def pairwise_needs_two_paths(cfg: DictConfig) -> str | None:
    s = cfg.sampler
    if cfg.stage != "rl" or ("roots" in s and s.get("siblings") is not None) or s.k >= 2:
        return None
    return (
        f"sampler.k={s.k}: a pairwise strategy compares paths of the same prompt, and with one path "
        "per prompt no pair can ever form; use sampler.k>=2 (default 8)"
    )


@check
def branch_leaves_room_for_siblings(cfg: DictConfig) -> str | None:
    s = cfg.sampler
    return branch_leaves_room(s.k, s.roots, s.get("siblings")) if "roots" in s else None


@check
def dpo_positive_needs_reference(cfg: DictConfig) -> str | None:
    return positive_lambda_needs_reference(cfg.loss.positive_lambda, cfg.loss.use_reference)


@check
def rewards_can_differ(cfg: DictConfig) -> str | None:
    if cfg.stage == "rl" and all(v == 0 for v in cfg.reward.weights.values()):
        return "reward.weights are all 0: every path gets the same reward and no pair can form"
    return None


@check
def process_noise_reaches_the_reward(cfg: DictConfig) -> str | None:
    if cfg.reward.get("process_noise", 0) > 0 and cfg.reward.process == "majority":
        return (
            f"reward.process_noise={cfg.reward.process_noise} flips step scores, which "
            "reward.process=majority never reads: use reward.process=verifier, or process_noise=0"
        )
    return None


@check
def init_optimizer_needs_init_from(cfg: DictConfig) -> str | None:
    if cfg.get("init_optimizer") and not cfg.get("init_from"):
        return "init_optimizer=true needs init_from=<run dir or .ckpt> to take the optimizer state from"
    return None


@check
def endless_run(cfg: DictConfig) -> str | None:
    if cfg.trainer.get("max_steps") == -1 and cfg.budget.max_tokens is None:
        return "trainer.max_steps=-1 with budget.max_tokens=null never stops: set one of them"
    return None


@check
def heads_divide_hidden(cfg: DictConfig) -> str | None:
    m = cfg.model
    if m.get("kind") == "tiny" and m.hidden % m.heads:
        return f"model.hidden={m.hidden} is not divisible by model.heads={m.heads}"
    return None


@check
def completions_fit_the_context(cfg: DictConfig) -> str | None:
    m = cfg.model
    if m.get("kind") != "tiny":  # other models' context is known once loaded (sampling/base.py checks)
        return None
    for key in ("sampler.max_new_tokens", "callbacks.eval.max_new_tokens"):
        v = OmegaConf.select(cfg, key)
        if v is not None and v >= m.max_len:
            return f"{key}={v} exceeds the model's context (model.max_len={m.max_len}) with no room for the prompt"
    return None


@check
def schedule_fraction_needs_budget(cfg: DictConfig) -> str | None:
    sched = cfg.get("schedule")
    for key in sched.stage_order if sched is not None else []:
        problem = token_fraction_needs_budget(key, sched[key].get("start_tokens_frac"), cfg.budget.max_tokens)
        if problem:
            return problem
    return None


@check
def extra_eval_tasks_are_composed(cfg: DictConfig) -> str | None:
    from gfpo_bench.callbacks import check_extra_tasks  # light: no Lightning

    try:
        check_extra_tasks(OmegaConf.select(cfg, "callbacks.eval.extra_tasks"))
    except ConfigError as e:  # e.g. the old list syntax: the message shows the new one
        return str(e)
    return None


# ---- layer 3: build what can be built without a model ----
def _dry_build(cfg: DictConfig) -> None:
    import hydra
    from hydra.errors import InstantiationException

    from gfpo_bench.rewards.process import PROCESS_REWARDS
    from gfpo_bench.sampling.branch import BRANCH_RULES
    from gfpo_bench.schedule import build_schedule

    def attempt(key: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except InstantiationException as e:
            cause = e.__cause__ or e
            raise ConfigError(f"{key}: {str(cause).splitlines()[0]}") from None
        except (ValueError, TypeError) as e:  # ConfigError too: say which key it came from
            raise ConfigError(f"{key}: {str(e).splitlines()[0]}") from None

    attempt("sampler", lambda: hydra.utils.instantiate(cfg.sampler))  # the class resolves
    if cfg.sampler.get("branch_at") is not None:
        attempt("sampler.branch_at", lambda: BRANCH_RULES.get(cfg.sampler.branch_at))
    attempt("reward.process", lambda: PROCESS_REWARDS.get(cfg.reward.process))
    attempt("reward", lambda: hydra.utils.instantiate(cfg.reward))
    attempt("loss", lambda: hydra.utils.instantiate(cfg.loss))
    key = "schedule" if cfg.get("schedule") is not None else "pairing"
    attempt(key, lambda: build_schedule(cfg))
    attempt("task", lambda: hydra.utils.instantiate(cfg.task))


# ---- layer 4: hardware, files, checkpoints ----
def _check_hardware(cfg: DictConfig) -> None:
    acc = str(cfg.trainer.get("accelerator", "cpu"))
    strategy = str(cfg.trainer.get("strategy", "auto"))
    if acc == "cpu" and "fsdp" in strategy:  # Lightning's FSDP refuses the CPU accelerator
        raise ConfigError(
            f"trainer.strategy={strategy} needs GPUs (trainer=gpu); on CPU use trainer.strategy=ddp"
        )
    if acc not in ("gpu", "cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={acc}: no CUDA GPU is visible on this machine "
            "(torch.cuda.is_available() is False); use trainer=cpu"
        )
    devices, have = cfg.trainer.get("devices"), torch.cuda.device_count()
    if isinstance(devices, int) and devices > have:
        raise ConfigError(f"trainer.devices={devices}, but this machine has {have} GPU(s)")


def _expected_arch(cfg: DictConfig) -> dict | None:
    """Architecture keys (config.json names) the model of this run will have, where known cheaply."""
    m = cfg.model
    if m.get("kind") == "tiny":
        return {"hidden_size": m.hidden, "num_hidden_layers": m.layers}
    local = Path(str(m.get("name_or_path") or "")).expanduser() / "config.json"
    if m.get("kind") == "hf" and local.is_file():
        import json

        have = json.loads(local.read_text())
        return {k: have[k] for k in ("hidden_size", "num_hidden_layers") if k in have}
    return None


def _check_paths(cfg: DictConfig) -> None:
    """The task's data files, a local model path and init_from (torch only for a .ckpt)."""
    from gfpo_bench.tasks.bench_data import check_data_path
    from gfpo_bench.warmstart import check_init_source

    if cfg.task.get("path"):
        check_data_path(cfg.task.path, f"task.path={cfg.task.path}")
    name = cfg.model.get("name_or_path")
    local = name and (cfg.model.get("kind") == "tiny" or str(name).startswith(("/", ".", "~")))
    if local and not Path(str(name)).expanduser().exists():
        raise ConfigError(
            f"model path not found: {name} (model.name_or_path: a saved model dir or a hub name)"
        )
    if cfg.get("init_from"):
        check_init_source(cfg.init_from, _expected_arch(cfg))


def _check_push_to_hub(cfg: DictConfig) -> None:
    """model.push_to_hub while offline or without a token: fail now, not after training."""
    if cfg.model.get("push_to_hub"):
        from gfpo_bench.models.saving import check_push_to_hub

        check_push_to_hub(cfg.model.push_to_hub)


def _check_resume(cfg: DictConfig, run_dir: Path | None) -> None:
    """The checkpoint an interrupted run would resume from can be read."""
    from gfpo_bench.warmstart import check_checkpoint_file, completed_summary

    last = run_dir / "checkpoints" / "last.ckpt" if run_dir is not None else None
    if cfg.resume == "auto" and last is not None and last.exists() and completed_summary(run_dir) is None:
        check_checkpoint_file(last, "resume=auto (this run dir holds an interrupted run)")


def _missing_keys(cfg: DictConfig) -> list[str]:
    """??? values outside the `hydra` node (tests compose with it; its interpolations need a run)."""
    out = []
    for key in cfg:
        if key == "hydra":
            continue
        if OmegaConf.is_missing(cfg, key):
            out.append(str(key))
        elif OmegaConf.is_config(cfg._get_node(key)):
            out += [f"{key}.{k}" for k in OmegaConf.missing_keys(cfg[key])]
    return out


def validate(cfg: DictConfig, run_dir: Path | None = None) -> None:
    """Raise ConfigError with one line for the first mistake in `cfg`; return quietly if none.

    `run_dir`: where the run writes (its checkpoint is checked when it resumes); None: skip that.
    """
    missing = sorted(_missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]} must be set (it is ??? in the config): add {missing[0]}=<value>")
    _apply(cfg, RULES)
    for prefix in _pairing_prefixes(cfg):
        _apply(cfg, PAIRING_RULES, prefix)
    if cfg.get("schedule") is not None:
        for key in cfg.schedule.stage_order:
            _apply(cfg, STAGE_RULES, f"schedule.{key}.")
    for fn in CHECKS:
        problem = fn(cfg)
        if problem:
            raise ConfigError(problem)
    _check_paths(cfg)
    _check_hardware(cfg)
    _check_push_to_hub(cfg)
    _dry_build(cfg)
    _check_resume(cfg, run_dir)
