"""`gfpo-bench-compare`: compare training runs per method and say which gaps are real.

    gfpo-bench-compare multirun/2025-01-01/12-00-00 [--metrics val/math/accuracy] [--by method]
    gfpo-bench-compare --wandb-project my-entity/gfpo-bench --out comparison/

Prints the markdown report and writes `table.md`, `table.csv` and one learning-curve PNG per
metric into `--out` (default: `<first dir>/comparison/`). Exit code 2, with one error line and
no traceback, for input a user can fix: a missing dir, no runs, an unknown metric or column.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .collect import CompareInputError, collect_runs, completed_runs, validation_metrics
from .plots import load_curves, plot_curves, plot_filename
from .render import render_failed, render_report
from .stats import as_list, summarize
from .wandb_source import collect_wandb_runs

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gfpo-bench-compare",
        description="Compare runs per method: mean ± 95% CI over seeds, a noise check, curves.",
    )
    p.add_argument("dirs", nargs="*", type=Path, help="run or multirun dirs (searched for summary.json)")
    p.add_argument("--wandb-project", metavar="ENTITY/PROJECT", help="read runs from W&B instead of dirs")
    p.add_argument("--out", type=Path, help="output dir (default: <first dir>/comparison)")
    p.add_argument(
        "--metrics", help="comma-separated metrics; the first sorts the table (default: all val/*)"
    )
    p.add_argument("--by", default="method", help="comma-separated run columns to group by (default: method)")
    return p


def _load(args: argparse.Namespace) -> tuple[pd.DataFrame, Path]:
    if args.wandb_project:
        if args.dirs:
            raise CompareInputError("give run dirs or --wandb-project, not both")
        out = args.out or Path("comparison")
        return collect_wandb_runs(args.wandb_project, out / "wandb_runs"), out
    if not args.dirs:
        raise CompareInputError("give at least one run dir, or --wandb-project ENTITY/PROJECT")
    return collect_runs(args.dirs), args.out or args.dirs[0] / "comparison"


def _check_columns(df: pd.DataFrame, metrics: list[str], by: list[str]) -> None:
    for name in by:
        if name not in df:
            known = ", ".join(c for c in df.columns if "/" not in c)
            raise CompareInputError(f"cannot group by {name!r}: runs have no such column (have: {known})")
    missing = [m for m in metrics if m not in df or completed_runs(df)[m].isna().all()]
    if missing:
        known = ", ".join(validation_metrics(completed_runs(df))) or "none"
        raise CompareInputError(f"no completed run reports {', '.join(missing)} (val metrics: {known})")


def run(args: argparse.Namespace) -> int:
    df, out = _load(args)
    if completed_runs(df).empty:
        print("\n".join(render_failed(df)), file=sys.stderr)
        raise CompareInputError(f"none of the {len(df)} runs completed; nothing to compare")
    by = as_list(args.by)
    metrics = as_list(args.metrics) if args.metrics else validation_metrics(completed_runs(df))
    if not metrics:
        raise CompareInputError("no completed run reports a val/* metric; name one with --metrics")
    _check_columns(df, metrics, by)
    summary = summarize(df, metrics, by)
    report = render_report(df, summary, metrics, by)

    # Files first, then stdout: `gfpo-bench-compare ... | head` must not cost the outputs.
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(report)
    summary.to_csv(out / "table.csv", index=False)
    frames = load_curves(df)  # read each metrics.csv once for all plots
    plots = [out / plot_filename(m) for m in metrics]
    written = [p for m, p in zip(metrics, plots, strict=True) if plot_curves(df, m, p, by, frames)]
    print(report)
    if len(written) < len(plots):
        print(f"note: {len(plots) - len(written)} metric(s) had no learning curves in metrics.csv")
    print(f"wrote table.md, table.csv and {len(written)} plot(s) to {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except CompareInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # reader (e.g. `head`) closed stdout early; outputs are already written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
