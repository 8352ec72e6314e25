"""Per-method statistics over seeds, and an honest answer to "is this difference real?".

`summarize` reduces completed runs to one row per method: for each metric the mean, standard
deviation, a 95% Student-t confidence interval half-width (t_{0.975, n-1} * sd / sqrt(n)) and n;
for cost and pair statistics the mean. `noise_report` compares the best method against every
other with Welch's t-test (unequal variances), because with 3-5 seeds per method most
leaderboard gaps in RL-for-reasoning are within seed noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .collect import COST_COLUMNS, PAIR_PREFIX, completed_runs

ALPHA = 0.05
# Suffixes of the per-metric columns in the summary table (and table.csv).
MEAN, SD, CI95, N = ":mean", ":sd", ":ci95", ":n"
N_SEEDS = "n_seeds"


def as_list(by: str | Sequence[str]) -> list[str]:
    """`"method"` or `"method,task"` or `["method", "task"]` as a list of column names."""
    return [c.strip() for c in by.split(",") if c.strip()] if isinstance(by, str) else list(by)


def group_label(key: object) -> str:
    """A groupby key (scalar or tuple) as one label: "gfpo" or "gfpo/arith"."""
    return "/".join(map(str, key)) if isinstance(key, tuple) else str(key)


def ci95_halfwidth(values: Sequence[float] | np.ndarray) -> float:
    """Half-width of the 95% Student-t interval of the mean; NaN with fewer than 2 values.

    >>> round(ci95_halfwidth([0.40, 0.42, 0.44]), 4)  # sd 0.02, t_{0.975,2} = 4.303
    0.0497
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return math.nan
    return float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def _groups(df: pd.DataFrame, by: str | Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    return [(group_label(k), g) for k, g in completed_runs(df).groupby(as_list(by), dropna=False, sort=True)]


def summarize(df: pd.DataFrame, metrics: Sequence[str], by: str | Sequence[str] = "method") -> pd.DataFrame:
    """One row per group of completed runs, sorted by the first metric's mean, best first.

    Columns: the `by` columns, `n_seeds`, then `<metric>:mean/:sd/:ci95/:n` per metric, then
    `<column>:mean` for tokens_generated, wall_time_s, steps and every `pair/...` statistic.
    """
    keys = as_list(by)
    done = completed_runs(df)
    extra = [c for c in COST_COLUMNS + [c for c in df.columns if c.startswith(PAIR_PREFIX)] if c in df]
    rows = []
    for key, g in done.groupby(keys, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, object] = dict(zip(keys, key, strict=True))
        row[N_SEEDS] = len(g)
        for m in metrics:
            vals = g[m].dropna().to_numpy(dtype=float) if m in g else np.array([])
            row[m + MEAN] = vals.mean() if len(vals) else math.nan
            row[m + SD] = vals.std(ddof=1) if len(vals) > 1 else math.nan
            row[m + CI95] = ci95_halfwidth(vals)
            row[m + N] = len(vals)
        for c in extra:
            row[c + MEAN] = g[c].mean()
        rows.append(row)
    out = pd.DataFrame(rows)
    if metrics and len(out):
        out = out.sort_values(metrics[0] + MEAN, ascending=False, na_position="last", kind="stable")
    out = out.reset_index(drop=True)
    out.attrs["by"] = keys
    return out


def _is_fraction(df: pd.DataFrame, metric: str) -> bool:
    """Accuracy-like metric in [0, 1]: differences read best in percentage points."""
    vals = df[metric].dropna()
    return len(vals) > 0 and bool(((vals >= 0) & (vals <= 1)).all())


def noise_report(
    df: pd.DataFrame, metric: str, by: str | Sequence[str] = "method", alpha: float = ALPHA
) -> list[str]:
    """One line per comparison of the best group (highest mean) against each other group.

    Each line gives the difference, Welch's t-test p-value and a verdict: "significant at
    p<0.05", "within noise (p ≥ 0.05)" or "cannot tell (need ≥ 2 seeds each)"; it adds
    "95% CIs overlap" when the two intervals overlap.
    """
    done = completed_runs(df)
    if metric not in done:
        return [f"no completed run reports {metric}"]
    groups = [(label, g[metric].dropna().to_numpy(dtype=float)) for label, g in _groups(df, by)]
    groups = [(label, v) for label, v in groups if len(v)]
    if len(groups) < 2:
        return [f"only {len(groups)} group reports {metric}: nothing to compare"]
    groups.sort(key=lambda lv: -lv[1].mean())
    (best, xb), others = groups[0], groups[1:]
    scale, unit = (100.0, " pts") if _is_fraction(done, metric) else (1.0, "")
    lines = []
    for label, xo in others:
        diff = (xb.mean() - xo.mean()) * scale
        head = f"{best} vs {label}: {diff:+.1f}{unit}" if unit else f"{best} vs {label}: {diff:+.4g}"
        if len(xb) < 2 or len(xo) < 2:
            lines.append(f"{head} — cannot tell (need ≥ 2 seeds each; have {len(xb)} and {len(xo)})")
            continue
        p = float(stats.ttest_ind(xb, xo, equal_var=False).pvalue)
        if not math.isfinite(p):
            lines.append(f"{head} — cannot tell (zero variance in both groups)")
            continue
        verdict = f"significant at p<{alpha:g}" if p < alpha else f"within noise (p ≥ {alpha:g})"
        hb, ho = ci95_halfwidth(xb), ci95_halfwidth(xo)
        overlap = xb.mean() - hb <= xo.mean() + ho
        lines.append(f"{head}, p={p:.2g} — {verdict}" + ("; 95% CIs overlap" if overlap else ""))
    if len(others) > 1:
        lines.append(
            f"({len(others)} comparisons: with Bonferroni correction, require p < {alpha / len(others):.2g})"
        )
    return lines
