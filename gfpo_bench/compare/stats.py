"""Per-method statistics over seeds, and an honest answer to "is this difference real?".

`summarize` reduces completed runs to one row per method: for each metric the mean, standard
deviation, a 95% Student-t confidence interval half-width (t_{0.975, n-1} * sd / sqrt(n)) and n;
for cost and pair statistics the mean. `noise_report` compares the best method against every
other with Welch's t-test (unequal variances), because with 3-5 seeds per method most
leaderboard gaps in RL-for-reasoning are within seed noise. `recommendation_verdicts` decides whether a
row's recommended method held (one-sided Welch against every alternative, Holm across rows), from
the per-method mean, sd and n that `summarize` writes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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


# ---- did a recommendation hold? (scripts/reproduce_tables.sh, Table 2; docs/protocol.md) ----------
@dataclass(frozen=True)
class Sample:
    """A method's result over seeds, as table.csv holds it: mean, sample sd (ddof=1), n seeds."""

    mean: float
    sd: float
    n: int


def welch_greater(a: Sample, b: Sample) -> float:
    """One-sided Welch p-value for "a's mean > b's mean" (NaN below 2 seeds, or zero variance in both).

    >>> round(welch_greater(Sample(0.52, 0.02, 3), Sample(0.42, 0.02, 3)), 4)  # t = 6.12 on 4 df
    0.0018
    """
    if min(a.n, b.n) < 2:
        return math.nan
    test = stats.ttest_ind_from_stats(
        a.mean, a.sd, a.n, b.mean, b.sd, b.n, equal_var=False, alternative="greater"
    )
    return float(test.pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order. NaN (a test that could not be run) counts
    in the family as p = 1 and stays NaN.

    >>> holm([0.01, 0.04, 0.03])  # sorted 0.01, 0.03, 0.04 -> x3, x2, x1, each at least the one before
    [0.03, 0.06, 0.06]
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: 1.0 if math.isnan(pvalues[i]) else pvalues[i])
    adjusted, running = [math.nan] * m, 0.0
    for rank, i in enumerate(order):
        p = 1.0 if math.isnan(pvalues[i]) else pvalues[i]
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = math.nan if math.isnan(pvalues[i]) else round(running, 12)
    return adjusted


@dataclass(frozen=True)
class Verdict:
    """Whether one row's recommended method held, with the numbers behind it."""

    verdict: str  # "held", "did not hold" or "not shown"
    p_held: float  # max over alternatives of p(recommended > alternative), one-sided Welch
    p_held_holm: float  # ... Holm-adjusted across the rows
    weakest: str  # the alternative that p_held comes from (the hardest to beat)
    p_failed: float  # min over alternatives of p(alternative > recommended)
    p_failed_holm: float  # ... Holm-adjusted across the rows
    strongest: str  # the alternative that p_failed comes from


def recommendation_verdicts(
    rows: dict[str, tuple[Sample, dict[str, Sample]]], alpha: float = ALPHA
) -> dict[str, Verdict]:
    """rows: {row: (recommended, {alternative: its result})} -> {row: Verdict}.

    "held": the recommended method beats every alternative of its row: the largest one-sided Welch
    p-value over the alternatives (recommended > alternative; a union-intersection test, so no
    correction within the row), Holm-adjusted across the rows, is below `alpha`. "did not hold": some
    alternative beats it: the smallest p-value of alternative > recommended, Holm-adjusted across the
    rows as its own family, is below `alpha` (the minimum over the row's alternatives is not corrected
    for their number: read it as a screen, docs/protocol.md). Anything else: "not shown", including
    a row with fewer than 2 seeds per method (NaN p-values).
    """
    names = list(rows)
    held, failed, weakest, strongest = [], [], [], []
    for name in names:
        rec, alts = rows[name]
        ahead = {alt: welch_greater(rec, res) for alt, res in alts.items()}
        behind = {alt: welch_greater(res, rec) for alt, res in alts.items()}
        worst = max(ahead, key=lambda a: math.inf if math.isnan(ahead[a]) else ahead[a], default="")
        best = min(behind, key=lambda a: math.inf if math.isnan(behind[a]) else behind[a], default="")
        held.append(ahead[worst] if worst else math.nan)
        failed.append(behind[best] if best else math.nan)
        weakest.append(worst)
        strongest.append(best)
    held_holm, failed_holm = holm(held), holm(failed)
    out = {}
    for i, name in enumerate(names):
        verdict = (
            "held" if held_holm[i] < alpha else "did not hold" if failed_holm[i] < alpha else "not shown"
        )  # NaN compares False: not shown
        out[name] = Verdict(
            verdict, held[i], held_holm[i], weakest[i], failed[i], failed_holm[i], strongest[i]
        )
    return out
