"""Render the comparison as markdown: the per-method table and the full report around it.

The table shows each metric as `mean ± 95% CI` over seeds, then seeds, cost and pair
statistics. The report adds the noise check (is the winner's lead real?), the failed runs that
were left out of the means, skipped corrupt summaries, and warnings about mixed groupings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from .collect import COMPLETED, PAIR_PREFIX, completed_runs
from .stats import CI95, MEAN, N_SEEDS, as_list, noise_report

NA = "–"


def _fmt(value: float, spec: str | None = None) -> str:
    """`spec` if given; else 3 decimals for small values (rates, gaps), fewer for large counts."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    if spec is None:
        spec = ",.0f" if abs(value) >= 100 else ".1f" if abs(value) >= 10 else ".3f"
    return format(value, spec)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _cell(mean: float, ci: float) -> str:
    if math.isnan(mean):
        return NA
    return f"{mean:.3f} ± {ci:.3f}" if not math.isnan(ci) else f"{mean:.3f} ±  n/a"


def render_markdown(summary_df: pd.DataFrame, metrics: Sequence[str]) -> str:
    """The summary (from `summarize`) as a markdown table, one row per method, best first."""
    keys = summary_df.attrs.get("by") or list(summary_df.columns[: list(summary_df.columns).index(N_SEEDS)])
    pair_cols = [c for c in summary_df.columns if c.startswith(PAIR_PREFIX) and c.endswith(MEAN)]
    header = [" / ".join(keys)] + list(metrics) + ["n seeds"]
    header += ["tokens generated", "wall time (s)"] + [c[len(PAIR_PREFIX) : -len(MEAN)] for c in pair_cols]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for _, row in summary_df.iterrows():
        cells = ["/".join(str(row[k]) for k in keys)]
        cells += [_cell(row[m + MEAN], row[m + CI95]) for m in metrics]
        cells.append(str(int(row[N_SEEDS])))
        cells.append(_fmt(row.get("tokens_generated" + MEAN, math.nan), ",.0f"))
        cells.append(_fmt(row.get("wall_time_s" + MEAN, math.nan), ",.1f"))
        cells += [_fmt(row[c]) for c in pair_cols]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Metrics: mean ± 95% Student-t CI over seeds. Tokens, wall time, pair statistics: mean.")
    return "\n".join(lines)


def _warnings(df: pd.DataFrame, by: Sequence[str]) -> list[str]:
    """Groupings that would quietly average things that should not be averaged."""
    done = completed_runs(df)
    out = []
    tasks = sorted(map(str, done["task"].dropna().unique()))
    if len(tasks) > 1 and "task" not in by:
        out.append(f"runs span tasks {tasks} but are grouped by {list(by)} only; try --by method,task")
    for key, g in done.groupby(list(by), dropna=False):
        seeds = g["seed"].dropna()
        dup = sorted(map(str, seeds[seeds.duplicated()].unique()))
        if dup:
            label = "/".join(map(str, key)) if isinstance(key, tuple) else str(key)
            out.append(f"{label} has repeated seeds {dup}; each run counts as a separate seed")
    return out


def render_failed(df: pd.DataFrame) -> list[str]:
    """One bullet per run that did not complete: method, seed, status, error, where."""
    failed = df[df["status"] != COMPLETED]
    lines = []
    for _, r in failed.iterrows():
        error = str(r["error"]).splitlines()[0] if isinstance(r["error"], str) and r["error"] else "no error"
        lines.append(f"- {r['method']} seed {r['seed']}: {r['status']} ({error}) — {r['run_dir']}")
    return lines


def render_report(
    df: pd.DataFrame, summary_df: pd.DataFrame, metrics: Sequence[str], by: str | Sequence[str] = "method"
) -> str:
    """The whole table.md: table, run counts, noise check, failed and skipped runs, warnings."""
    keys = as_list(by)
    n_done = len(completed_runs(df))
    failed = render_failed(df)
    skipped = df.attrs.get("skipped", [])
    parts = ["# Method comparison", "", render_markdown(summary_df, metrics), ""]
    counts = f"{_plural(n_done, 'completed run')} in the means; {_plural(len(failed), 'failed run')} excluded"
    parts.append(counts + (f"; {len(skipped)} corrupt summary.json skipped." if skipped else "."))
    if metrics:
        parts += ["", f"## Is the lead real? ({metrics[0]}, Welch's t-test, best vs each)", ""]
        parts += [f"- {line}" for line in noise_report(df, metrics[0], keys)]
    if failed:
        parts += ["", f"## Failed runs ({len(failed)}, excluded from the means)", "", *failed]
    if skipped:
        parts += ["", f"## Skipped corrupt summaries ({len(skipped)})", ""]
        parts += [f"- {path}: {reason}" for path, reason in skipped]
    warnings = _warnings(df, keys)
    if warnings:
        parts += ["", "## Warnings", "", *[f"- {w}" for w in warnings]]
    return "\n".join(parts) + "\n"
