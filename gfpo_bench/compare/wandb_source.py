"""Collect runs from a W&B project instead of local run dirs.

Each W&B run is mirrored into the on-disk contract the local path reads (`<cache>/<run id>/`
with `summary.json` and `metrics.csv` from `run.history()`), then `collect_runs` reads the
cache. So both sources go through one code path, and a mirrored project can be re-compared
offline by pointing the CLI at the cache dir.

Field mapping (W&B has no summary.json; training code logs its fields to `run.summary`):
method  <- summary/config "method", else config "pairing" (a name, or a dict with "name"),
           else the run's group; seed <- config; task, overrides <- summary, else config;
           status <- "completed" iff state is "finished"; metrics <- numeric summary keys
           containing "/"; tokens_generated <- summary "tokens_generated" or
           "train/tokens_generated"; wall_time_s <- summary "wall_time_s" or "_runtime";
           pair_stats <- summary "pair_stats" (dict) or "pair_stats/<name>" keys.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from gfpo_bench.summary import RunSummary

from .collect import COMPLETED, METRICS_CSV, CompareInputError, collect_runs

log = logging.getLogger(__name__)

HISTORY_SAMPLES = 5000  # W&B down-samples history to this many rows; ample for a plot
API_TIMEOUT_S = 30


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _name(value: Any) -> str | None:
    """A config entry that names something: a string, or a dict with a "name" field."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return value["name"]
    return None


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def wandb_run_to_summary(run: Any) -> RunSummary:
    """The summary.json of one W&B run (see the module docstring for the mapping); the mirror's
    directory is named by the W&B run id."""
    config = dict(run.config or {})
    raw = getattr(run, "summary_metrics", None)  # plain dict in recent wandb; HTTPSummary otherwise
    raw = raw if isinstance(raw, Mapping) else (run.summary or {})
    summary = {str(k): raw[k] for k in raw.keys()}
    method = (
        _name(summary.get("method"))
        or _name(config.get("method"))
        or _name(config.get("pairing"))
        or _name(getattr(run, "group", None))
    )
    pair_stats = summary.get("pair_stats")
    if not isinstance(pair_stats, Mapping):
        pair_stats = {k.split("/", 1)[1]: v for k, v in summary.items() if k.startswith("pair_stats/")}
    state = str(getattr(run, "state", "unknown"))
    metrics = {
        k: _scalar(v)
        for k, v in summary.items()
        if "/" in k and not k.startswith(("_", "pair_stats/")) and _scalar(v) is not None
    }
    return RunSummary(
        method=method,
        seed=config.get("seed"),
        task=_name(summary.get("task")) or _name(config.get("task")),
        status=COMPLETED if state == "finished" else state,
        error=None if state == "finished" else f"W&B run state: {state}",
        metrics=metrics,
        pair_stats={k: _scalar(v) for k, v in dict(pair_stats).items()},
        tokens_generated=_scalar(summary.get("tokens_generated", summary.get("train/tokens_generated"))),
        wall_time_s=_scalar(summary.get("wall_time_s", summary.get("_runtime"))),
        steps=_scalar(summary.get("steps", summary.get("_step"))),
        overrides=summary.get("overrides") or config.get("overrides") or [],
        config=config,
    )


def _history(run: Any) -> pd.DataFrame | None:
    try:
        hist = run.history(samples=HISTORY_SAMPLES, pandas=True)
    except Exception as err:  # any API failure only costs this run its curve
        log.warning("no history for W&B run %s: %s", run.id, _first_line(err))
        return None
    if not isinstance(hist, pd.DataFrame) or hist.empty:
        return None
    if "step" not in hist and "_step" in hist:
        hist = hist.rename(columns={"_step": "step"})
    return hist


def mirror_wandb_project(project: str, cache_dir: str | Path, api: Any = None) -> list[Path]:
    """Write every run of `project` ("entity/project") to `cache_dir/<run id>/`; return those dirs.

    Raises CompareInputError (one line) when W&B is unreachable, not logged in, or the project
    does not exist or is empty. `api` replaces `wandb.Api()` (tests pass a fake).
    """
    try:
        if api is None:
            import wandb  # imported here: slow to import, and only this path needs it

            api = wandb.Api(timeout=API_TIMEOUT_S)
        runs = list(api.runs(project))
    except Exception as err:  # network, auth and missing-project errors all end here
        raise CompareInputError(f"cannot read W&B project {project!r}: {_first_line(err)}") from err
    if not runs:
        raise CompareInputError(f"W&B project {project!r} has no runs")
    cache = Path(cache_dir)
    run_dirs = []
    for run in runs:
        run_dir = cache / str(run.id)
        run_dirs.append(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        wandb_run_to_summary(run).write(run_dir)
        hist = _history(run)
        if hist is not None:
            hist.to_csv(run_dir / METRICS_CSV, index=False)
        else:  # a curve left over from an earlier mirror would no longer match this run
            (run_dir / METRICS_CSV).unlink(missing_ok=True)
    log.info("mirrored %d W&B runs of %s into %s", len(runs), project, cache)
    return run_dirs


def collect_wandb_runs(project: str, cache_dir: str | Path, api: Any = None) -> pd.DataFrame:
    """`collect_runs` over a W&B project, mirrored to `cache_dir` first (stale mirrors ignored)."""
    return collect_runs(mirror_wandb_project(project, cache_dir, api))
