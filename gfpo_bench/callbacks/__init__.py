"""The run's Lightning callbacks, all built from config (`conf/callbacks/default.yaml`).

`instantiate_callbacks(cfg.callbacks)` instantiates every entry with a `_target_`, in the order of
the YAML, as lightning-hydra-template's `instantiate_callbacks` does. The order is part of the
behaviour: Lightning calls the hooks of its callbacks in list order, so evaluation runs before the
checkpoint of the same step, SaveOnSigterm saves after the recorders have recorded the step, and
CSVResume comes last.

`summary_fields(callbacks)` is the one way results of callbacks reach summary.json: every callback
with a `summary_fields()` method contributes its part (EvalCallback: `metrics`, `eval_history`;
PairStatsRecorder: `pair_stats`), passed on to `RunSummary.from_config`.

Light on purpose (Lightning and Hydra's instantiate are imported inside the functions), so that
`validation.py` can call `check_extra_tasks` before anything heavy is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from gfpo_bench.errors import ConfigError

EXTRA_TASKS = "callbacks.eval.extra_tasks"
NEW_SYNTAX = "+task@callbacks.eval.extra_tasks.{name}={task}"


def check_extra_tasks(value: Any) -> None:
    """`callbacks.eval.extra_tasks` must be null or a dict name -> task (a task config composed by
    Hydra, or the task it instantiated). The old list of names fails with the new syntax:

    >>> check_extra_tasks(["code"])
    Traceback (most recent call last):
    ...
    gfpo_bench.errors.ConfigError: callbacks.eval.extra_tasks=[code] is the old syntax; extra eval tasks are composed by Hydra now, one override per task: +task@callbacks.eval.extra_tasks.code=code
    """
    if value is None:
        return
    if isinstance(value, Sequence) and not isinstance(value, str):  # the old syntax: a list of names
        names = [v if isinstance(v, str) else "<name>" for v in value]
        new = " ".join(NEW_SYNTAX.format(name=n, task=n) for n in names) or f"{EXTRA_TASKS}=null"
        raise ConfigError(
            f"{EXTRA_TASKS}=[{','.join(names)}] is the old syntax; extra eval tasks are composed by "
            f"Hydra now, one override per task: {new}"
        )
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{EXTRA_TASKS}={value} is not a dict of tasks; add each task with "
            + NEW_SYNTAX.format(name="<name>", task="<task>")
        )
    for name, task in value.items():
        if isinstance(task, str):
            raise ConfigError(
                f"{EXTRA_TASKS}.{name}={task} is a name, not a task config; compose it with "
                + NEW_SYNTAX.format(name=name, task=task)
            )
        if isinstance(task, Mapping) and "_target_" not in task:
            raise ConfigError(
                f"{EXTRA_TASKS}.{name} is not a task config (it has no _target_); compose one with "
                + NEW_SYNTAX.format(name=name, task="<task>")
            )


@runtime_checkable
class ReportsToSummary(Protocol):
    """A callback whose results go into summary.json: `summary_fields()` returns RunSummary fields."""

    def summary_fields(self) -> dict[str, Any]: ...


def instantiate_callbacks(cfg: Mapping | None) -> list:
    """Every entry of `cfg` (the `callbacks` config) with a `_target_`, instantiated, in config order.
    A constructor's own error (bad input) is raised as itself, not wrapped by Hydra (building.py), so
    the CLI reports it as one `error:` line."""
    from lightning.pytorch.callbacks import Callback

    from gfpo_bench.building import build

    callbacks: list[Callback] = []
    if not cfg:
        return callbacks
    if "eval" in cfg:
        check_extra_tasks(cfg["eval"].get("extra_tasks"))
    for name, conf in cfg.items():
        if not isinstance(conf, Mapping) or "_target_" not in conf:
            continue
        cb = build(conf)
        if not isinstance(cb, Callback):
            raise ConfigError(f"callbacks.{name}: {conf['_target_']} is not a Lightning Callback")
        callbacks.append(cb)
    return callbacks


def summary_fields(callbacks: Iterable) -> dict[str, Any]:
    """The callbacks' parts of summary.json, merged: each `ReportsToSummary` one's `summary_fields()`."""
    out: dict[str, Any] = {}
    for cb in callbacks:
        if isinstance(cb, ReportsToSummary):
            out.update(cb.summary_fields())
    return out
