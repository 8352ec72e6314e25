"""Learning-curve plots: a validation metric against generated tokens, one line per method.

Generated tokens (not steps) is the x axis because the methods spend very different amounts of
sampling per step; compute-matched curves are the fair comparison. Each run's curve comes from
its sparse metrics.csv: validation rows are placed on the token axis by interpolating the
cumulative `train/tokens_generated` at the same step. Runs of one method are interpolated on a
common grid over the x range they all cover; the line is their mean and the band their
min–max. If any run lacks the token column, every curve falls back to steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # object API: no pyplot state, renders with Agg
from matplotlib.ticker import EngFormatter

from .collect import completed_runs, read_curve
from .stats import as_list, group_label

TOKENS = "train/tokens_generated"
GRID_POINTS = 200


@dataclass
class Curve:
    """One method's learning curve aggregated over seeds."""

    x: np.ndarray  # [G] common grid
    mean: np.ndarray  # [G] mean over seeds
    lo: np.ndarray  # [G] min over seeds
    hi: np.ndarray  # [G] max over seeds
    n: int  # number of runs aggregated


def load_curves(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """metrics.csv frames of the completed runs, keyed by run_dir (runs without one are left out)."""
    frames = {}
    for run_dir in completed_runs(df)["run_dir"]:
        frame = read_curve(run_dir)
        if frame is not None:
            frames[run_dir] = frame
    return frames


def curve_xy(frame: pd.DataFrame, metric: str, use_tokens: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, y) of one run: the steps where `metric` was logged, mapped to tokens if asked."""
    if metric not in frame:
        return None
    pts = frame[["step", metric]].dropna().groupby("step")[metric].last()
    if pts.empty:
        return None
    steps = pts.index.to_numpy(dtype=float)
    if not use_tokens:
        return steps, pts.to_numpy(dtype=float)
    tok = frame[["step", TOKENS]].dropna().groupby("step")[TOKENS].max()
    ts, tv = tok.index.to_numpy(dtype=float), tok.to_numpy(dtype=float)
    if ts[0] > 0:  # nothing is generated before step 0: anchor the start of the token axis
        ts, tv = np.r_[0.0, ts], np.r_[0.0, tv]
    return np.interp(steps, ts, tv), pts.to_numpy(dtype=float)


def uses_tokens(frames: Mapping[str, pd.DataFrame]) -> bool:
    """Token axis only if every run logged generated tokens; mixing axes would mislead."""
    return bool(frames) and all(TOKENS in f and f[TOKENS].notna().any() for f in frames.values())


def aggregate(xys: Sequence[tuple[np.ndarray, np.ndarray]]) -> Curve | None:
    """Mean and min–max of several runs on a grid over the x range that all of them cover."""
    lo_x, hi_x = max(x.min() for x, _ in xys), min(x.max() for x, _ in xys)
    if hi_x < lo_x:
        return None  # runs do not overlap on x: no honest mean exists
    grid = np.linspace(lo_x, hi_x, GRID_POINTS) if hi_x > lo_x else np.array([lo_x])
    ys = np.vstack([np.interp(grid, *_sorted(x, y)) for x, y in xys])  # [R, G]
    return Curve(grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0), len(xys))


def _sorted(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def method_curves(
    df: pd.DataFrame,
    metric: str,
    by: str | Sequence[str] = "method",
    frames: Mapping[str, pd.DataFrame] | None = None,
) -> tuple[dict[str, Curve], str]:
    """Per-group aggregated curves of `metric` and the x-axis label they use."""
    frames = load_curves(df) if frames is None else frames
    use_tokens = uses_tokens(frames)
    curves: dict[str, Curve] = {}
    for key, g in completed_runs(df).groupby(as_list(by), dropna=False, sort=True):
        xys = [curve_xy(frames[d], metric, use_tokens) for d in g["run_dir"] if d in frames]
        xys = [xy for xy in xys if xy is not None]
        curve = aggregate(xys) if xys else None
        if curve is not None:
            curves[group_label(key)] = curve
    return curves, ("generated tokens" if use_tokens else "training step")


def plot_curves(
    run_dirs_df: pd.DataFrame,
    metric: str,
    path: str | Path,
    by: str | Sequence[str] = "method",
    frames: Mapping[str, pd.DataFrame] | None = None,
) -> bool:
    """Write a PNG of `metric` learning curves per method; False (nothing written) if no data."""
    curves, x_label = method_curves(run_dirs_df, metric, by, frames)
    if not curves:
        return False
    fig = Figure(figsize=(7, 4.5), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    for label, c in sorted(curves.items(), key=lambda kv: -kv[1].mean[-1]):  # legend: best first
        (line,) = ax.plot(c.x, c.mean, marker="o" if len(c.x) == 1 else None, label=f"{label} (n={c.n})")
        if c.n > 1:
            ax.fill_between(c.x, c.lo, c.hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_title(f"{metric} vs {x_label}")
    ax.set_xlabel(x_label)
    ax.xaxis.set_major_formatter(EngFormatter())  # 250k tokens, not 250000 or 2.5e5
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(title="mean over seeds; band: min–max", fontsize="small", title_fontsize="small")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return True


def plot_filename(metric: str) -> str:
    """`val/code/pass@1` -> `curve_val_code_pass_1.png`."""
    slug = "".join(ch if ch.isalnum() else "_" for ch in metric).strip("_")
    return f"curve_{slug}.png"
