"""Collect finished training runs from disk into one table: one row per run.

Every training run leaves a directory with a `summary.json` (method, seed, status, final
metrics, pair statistics, cost; its schema is `gfpo_bench.summary.RunSummary`) and, somewhere below it, the `metrics.csv` that Lightning's
CSVLogger wrote (the learning curve). This module finds those files under any number of
directories (single runs or nested Hydra multirun trees) and flattens them into a DataFrame.

A corrupt `summary.json` is skipped with a logged warning; the skipped paths are kept in
`df.attrs["skipped"]` so the report can say how many were lost.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from gfpo_bench.summary import COMPLETED, NOT_METRICS, PAIR_STATS, RunSummary
from gfpo_bench.summary import FILE_NAME as SUMMARY_NAME

log = logging.getLogger(__name__)

METRICS_CSV = "metrics.csv"
# Columns every run row has, in display order; metrics, pair stats and config follow.
BASE_COLUMNS = ["method", "seed", "task", "status", "error"]
COST_COLUMNS = ["tokens_generated", "wall_time_s", "steps"]
PAIR_PREFIX = "pair/"
# Pair statistics in the order summary.json lists them (summary.PAIR_STATS); any others follow, sorted.
PAIR_ORDER = list(PAIR_STATS.values())
CONFIG_PREFIX = "config."


class CompareInputError(Exception):
    """Bad input a user can fix (missing dir, no runs, unknown metric): one line, exit code 2."""


def find_summaries(dirs: Iterable[str | Path]) -> list[Path]:
    """Every `summary.json` below each dir; raises CompareInputError on a missing or empty dir."""
    found: list[Path] = []
    for d in map(Path, dirs):
        if not d.is_dir():
            raise CompareInputError(f"no such directory: {d}")
        hits = sorted(d.rglob(SUMMARY_NAME))
        if not hits:
            raise CompareInputError(f"no {SUMMARY_NAME} found under {d} (is it a run or multirun dir?)")
        found.extend(hits)
    # The same run reached through two overlapping dirs counts once.
    return list(dict.fromkeys(p.resolve() for p in found))


def _number(value: Any) -> float:
    """A JSON scalar as float; anything non-numeric (null, strings, dicts) becomes NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _flatten(tree: Any, prefix: str) -> dict[str, Any]:
    """Scalar leaves of a nested config dict as {prefix + 'a.b.c': value}."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for key, val in tree.items():
            out.update(_flatten(val, f"{prefix}{key}."))
    elif isinstance(tree, str | int | float | bool) or tree is None:
        out[prefix.rstrip(".")] = tree
    return out


def summary_to_row(summary: RunSummary | Any, run_dir: Path) -> dict[str, Any]:
    """One run's summary (a RunSummary, or summary.json's content) as a flat row; raises ValueError
    if the content breaks the contract (`RunSummary.from_dict`)."""
    if not isinstance(summary, RunSummary):
        summary = RunSummary.from_dict(summary)
    metrics, overrides = summary.metrics, summary.overrides
    row: dict[str, Any] = {
        "method": summary.method,
        "seed": summary.seed,
        "task": summary.task,
        "status": summary.status,
        "error": summary.error,
    }
    row.update({name: _number(v) for name, v in sorted(metrics.items())})
    # the change from the run's own warm start (its step-0 evaluation), e.g. val/math/accuracy_gain
    warm = summary.warm_start or {}
    if isinstance(warm, dict):
        for name, start in sorted(warm.items()):
            if name.startswith("val/") and name in metrics and name not in NOT_METRICS:
                row[f"{name}_gain"] = _number(metrics[name]) - _number(start)
    row.update({name: _number(getattr(summary, name)) for name in COST_COLUMNS})
    row.update({PAIR_PREFIX + name: _number(v) for name, v in sorted(summary.pair_stats.items())})
    row["overrides"] = " ".join(map(str, overrides)) if isinstance(overrides, list) else str(overrides)
    row["run_dir"] = str(run_dir)
    row.update(_flatten(summary.config, CONFIG_PREFIX))
    return row


def collect_runs(dirs: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """One row per run found below `dirs`: method, seed, status, metrics, cost, pair stats.

    Failed runs are kept (status != "completed"); callers filter. Raises CompareInputError when
    a dir is missing, holds no summary.json, or every summary.json found is corrupt.
    """
    if isinstance(dirs, str | Path):
        dirs = [dirs]
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    for path in find_summaries(dirs):
        try:
            rows.append(summary_to_row(RunSummary.read(path), path.parent))
        except (OSError, ValueError) as err:  # unreadable, not JSON (JSONDecodeError), off contract
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.warning("skipping corrupt %s: %s", path, reason)
            skipped.append((str(path), reason))
    if not rows:
        raise CompareInputError(f"all {len(skipped)} {SUMMARY_NAME} files found are corrupt")
    df = pd.DataFrame(rows)
    # Stable, readable column order: identity, metrics, cost, pair stats, provenance, config.
    rank = {PAIR_PREFIX + name: i for i, name in enumerate(PAIR_ORDER)}
    pair_cols = sorted(
        (c for c in df.columns if c.startswith(PAIR_PREFIX)), key=lambda c: (rank.get(c, 99), c)
    )
    config_cols = sorted(c for c in df.columns if c.startswith(CONFIG_PREFIX))
    fixed = BASE_COLUMNS + COST_COLUMNS + pair_cols + ["overrides", "run_dir"] + config_cols
    metric_cols = sorted(c for c in df.columns if c not in set(fixed))
    order = BASE_COLUMNS + metric_cols + COST_COLUMNS + pair_cols + ["overrides", "run_dir"] + config_cols
    df = df[order]
    df.attrs["skipped"] = skipped
    return df


def completed_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Only the runs whose status is "completed" (the ones that enter means and plots)."""
    return df[df["status"] == COMPLETED]


def validation_metrics(df: pd.DataFrame) -> list[str]:
    """Metric columns named `val/...` that at least one run reports, sorted."""
    return sorted(
        c for c in df.columns if c.startswith("val/") and c not in NOT_METRICS and df[c].notna().any()
    )


def find_metrics_csv(run_dir: str | Path) -> Path | None:
    """The metrics.csv below a run dir; with several (resumed runs), the most recently written."""
    hits = sorted(Path(run_dir).rglob(METRICS_CSV), key=lambda p: p.stat().st_mtime)
    if len(hits) > 1:
        log.warning("%s holds %d metrics.csv files; using %s", run_dir, len(hits), hits[-1])
    return hits[-1] if hits else None


def read_curve(run_dir: str | Path) -> pd.DataFrame | None:
    """A run's learning curve (Lightning CSVLogger rows, sparse: NaN where not logged), or None."""
    path = find_metrics_csv(run_dir)
    if path is None:
        return None
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:  # pandas' ParserError and EmptyDataError are ValueErrors
        log.warning("cannot read %s: %s", path, err)
        return None
    if "step" not in frame.columns:
        frame["step"] = range(len(frame))
    return frame
