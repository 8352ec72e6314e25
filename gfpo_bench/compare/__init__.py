"""Compare training runs across pairing methods: per-method means with 95% CIs over seeds,
Welch's t-test against the best method, failed runs listed apart, learning curves per method.

Python API (the CLI `gfpo-bench-compare` is `main`):

    df = collect_runs(["multirun/2025-01-01/12-00-00"])  # one row per run
    summary = summarize(df, ["val/math/accuracy"])  # one row per method, best first
    print(render_markdown(summary, ["val/math/accuracy"]))
    print("\\n".join(noise_report(df, "val/math/accuracy")))
    plot_curves(df, "val/math/accuracy", "curve.png")
"""

from .cli import main
from .collect import CompareInputError, collect_runs, completed_runs, read_curve, validation_metrics
from .plots import method_curves, plot_curves
from .render import render_markdown, render_report
from .stats import ci95_halfwidth, noise_report, summarize
from .wandb_source import collect_wandb_runs

__all__ = [
    "CompareInputError",
    "ci95_halfwidth",
    "collect_runs",
    "collect_wandb_runs",
    "completed_runs",
    "main",
    "method_curves",
    "noise_report",
    "plot_curves",
    "read_curve",
    "render_markdown",
    "render_report",
    "summarize",
    "validation_metrics",
]
