#!/usr/bin/env python
# python scripts/bench_learning.py                          # every strategy x seeds 0,1,2 at one token budget
# python scripts/bench_learning.py --mode sensitivity       # optim.lr x loss.positive_lambda, default strategy
# python scripts/bench_learning.py --strategies srpo,gfpo --seeds 0,1 --budget 100000 --extra loss.beta=0.2
"""Does RL really teach the embedded default, and which strategy teaches most per generated token?

Every strategy runs at today's defaults on one sampler (--sampler), so this is a learning check, not
a verdict: the verdicts of record are scripts/tournament.py's (docs/protocol.md: every method tuned
alike on val, reported on test with fresh seeds). Optimizer steps are reported next to tokens.

Every run is the real CLI, launched as Hydra multirun sweeps (`gfpo-bench -m ... hydra/launcher=joblib`,
two jobs in parallel, one CPU thread each) into one sweep dir, then read back with the compare tool
(`gfpo-bench-compare`: mean +- 95% CI over seeds, learning-curve PNGs vs generated tokens). There is
no private training loop here. Re-running the same command skips finished jobs.

Prints, for the default config: the warm start's greedy and sampled accuracy (at the training
temperature) and the share of groups with a reward spread; then each strategy's greedy and sampled
accuracy after RL and its gain over the warm start (mean +- 95% CI over seeds, on every held-out
problem of the val split), pairs per step, tokens and wall time. Writes table.md and results.json to
--out, and the compare tool's table and curves to --out/<mode>/comparison/.

`--mode sensitivity` sweeps optim.lr x loss.positive_lambda (override with --grid) for the default
strategy and prints the gain of each cell.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from gfpo_bench.compare.collect import collect_runs, completed_runs
from gfpo_bench.compare.stats import ci95_halfwidth

ACC, SAMPLED = "val/math/accuracy", "val/math/sampled_accuracy"
DEFAULT = "srpo"  # the default strategy (conf/config.yaml)


def gfpo_bench() -> str:
    return str(Path(sys.executable).with_name("gfpo-bench"))


def sweep(sweep_dir: Path, overrides: list[str], args) -> None:
    """One Hydra multirun (joblib launcher) into `sweep_dir`; finished jobs are skipped on a re-run."""
    cmd = [
        gfpo_bench(),
        "-m",
        *overrides,
        f"seed={args.seeds}",
        f"budget.max_tokens={args.budget}",
        f"trainer.max_steps={args.max_steps}",
        f"callbacks.eval.every_n_steps={args.eval_every}",
        "callbacks.checkpoint.every_n_train_steps=1000000",
        "logger=csv",
        "hydra/launcher=joblib",
        f"hydra.launcher.n_jobs={args.jobs}",
        f"hydra.sweep.dir={sweep_dir}",
        *args.extra,
    ]
    print("$ " + " ".join(cmd[1:]).replace(str(sweep_dir), "<out>"), file=sys.stderr, flush=True)
    # a sweep whose jobs all failed still exits 0 here (failed jobs are recorded in their summaries)
    subprocess.run([cmd[0], *cmd[1:]], check=True, stdout=subprocess.DEVNULL)


def build_warm_start(args) -> None:
    """Build the cached warm start once, before parallel jobs ask for it."""
    run_dir = Path(args.out) / ".warm_start"
    cmd = [gfpo_bench(), "stage=sft", "trainer.max_steps=1", "callbacks.eval.max_problems=1", "logger=csv"]
    subprocess.run(
        [*cmd, f"hydra.run.dir={run_dir}", "resume=never", *args.extra],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def mean_ci(values) -> str:
    v = pd.Series(values, dtype=float).dropna()
    if v.empty:
        return "n/a"
    ci = ci95_halfwidth(v.to_numpy()) if len(v) > 1 else float("nan")
    return f"{100 * v.mean():.1f} ± {100 * ci:.1f}"


def load(sweep_dir: Path) -> pd.DataFrame:
    """Completed runs with their warm-start numbers (from summary.json) as columns."""
    df = completed_runs(collect_runs(sweep_dir)).copy()
    warm = [json.loads((Path(d) / "summary.json").read_text()).get("warm_start", {}) for d in df["run_dir"]]
    for key in (ACC, SAMPLED):
        df[f"warm:{key}"] = [w.get(key) for w in warm]
    return df


def strategy_table(df: pd.DataFrame, by: list[str]) -> str:
    lines = [
        f"| {' | '.join(by)} | seeds | greedy acc after RL (%) | gain (pts) | sampled acc (%) | sampled gain (pts) "
        "| mixed groups | pairs / step | steps | tokens | wall (s) |",
        "|" + "---|" * len(by) + "---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, g in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        gain = g[ACC] - g[f"warm:{ACC}"]
        sgain = g[SAMPLED] - g[f"warm:{SAMPLED}"]
        lines.append(
            f"| {' | '.join(map(str, key))} | {len(g)} | {mean_ci(g[ACC])} | {mean_ci(gain)} "
            f"| {mean_ci(g[SAMPLED])} | {mean_ci(sgain)} | {g['pair/pairable_group_rate'].mean():.2f} "
            f"| {g['pair/pairs_per_step'].mean():.1f} | {g['steps'].mean():.0f} | {g['tokens_generated'].mean():,.0f} "
            f"| {g['wall_time_s'].mean():.0f} |"
        )
    return "\n".join(lines)


def warm_start_line(df: pd.DataFrame) -> str:
    """The warm start's numbers; the mixed-group rate is the default strategy's (dapo's is 1.0 by
    construction: dynamic sampling drops the groups without a spread)."""
    ws = df.iloc[0]
    n = int(df.iloc[0].get("config.callbacks.eval.max_problems", 0) or 0)
    base = df[df["method"] == DEFAULT] if (df["method"] == DEFAULT).any() else df
    return (
        f"warm start ({n} val problems): greedy {100 * ws[f'warm:{ACC}']:.1f}%, "
        f"sampled at T={ws['config.sampler.temperature']} {100 * ws[f'warm:{SAMPLED}']:.1f}%; "
        f"share of groups with a reward spread during RL ({base['method'].iloc[0]}): "
        f"{base['pair/pairable_group_rate'].mean():.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["strategies", "sensitivity"], default="strategies")
    ap.add_argument("--strategies", default="srpo,vapo,dapo,gfpo,top2,random,grpo")
    ap.add_argument(
        "--grid",
        nargs="*",
        default=["optim.lr=1e-5,3e-5,1e-4", "loss.positive_lambda=0,50"],
        help="sensitivity mode: the swept overrides",
    )
    ap.add_argument(
        "--sampler", default="independent", help="strategies mode: the one sampler every strategy uses"
    )
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budget", type=int, default=200_000, help="generated tokens per run (equal compute)")
    ap.add_argument("--max-steps", type=int, default=2000, help="a cap; the token budget ends runs first")
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="artifacts/bench_learning")
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for every run")
    args = ap.parse_args()
    out = Path(args.out)
    sweep_dir = out / args.mode
    build_warm_start(args)

    if args.mode == "strategies":
        # one sampler for every strategy (--sampler): a strategy on its own sampler would mix two
        # questions, and a branched path costs fewer generated tokens, so more optimizer steps
        sweep(sweep_dir, [f"pairing={args.strategies}", f"sampler={args.sampler}"], args)
        by = ["method"]
    else:
        sweep(sweep_dir, args.grid, args)
        by = ["config." + g.split("=")[0] for g in args.grid]

    df = load(sweep_dir)
    subprocess.run(
        [
            str(Path(sys.executable).with_name("gfpo-bench-compare")),
            str(sweep_dir),
            "--metrics",
            f"{ACC},{SAMPLED}",
            "--by",
            ",".join(by),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    table = strategy_table(df, by)
    text = f"{warm_start_line(df)}\n\n{table}\n"
    (out / f"{args.mode}.md").write_text(text)
    (out / f"{args.mode}.json").write_text(df.to_json(orient="records", indent=1))
    print(text)
    print(f"curves: {sweep_dir / 'comparison'}", file=sys.stderr)


if __name__ == "__main__":
    main()
