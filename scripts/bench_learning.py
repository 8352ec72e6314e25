#!/usr/bin/env python
# python scripts/bench_learning.py                       # every strategy, 1 seed, 150 steps each
# python scripts/bench_learning.py --strategies srpo,gfpo --seeds 0,1,2 --steps 300 --extra sampler=branch
"""Does RL really teach the embedded default? Warm-start vs after-RL greedy val accuracy, per strategy.

Each run is the real CLI (`gfpo-bench pairing=X seed=S ...`) in its own process, one after another on
this machine, so wall times are comparable. Prints a markdown table (medians over seeds) and writes
results.json + table.md into --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run_one(out: Path, strategy: str, seed: int, args) -> dict:
    run_dir = out / f"{strategy}-s{seed}"
    cmd = [
        str(Path(sys.executable).with_name("gfpo-bench")),
        f"pairing={strategy}",
        f"seed={seed}",
        f"trainer.max_steps={args.steps}",
        "logger=csv",
        f"callbacks.eval.every_n_steps={args.eval_every}",
        "callbacks.eval.max_problems=200",
        "resume=never",
        f"hydra.run.dir={run_dir}",
        *args.extra,
    ]
    if args.minutes:
        cmd.append(f"+trainer.max_time=00:00:{int(args.minutes):02d}:00")
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  {strategy} seed {seed} FAILED:\n{proc.stderr[-1500:]}", file=sys.stderr)
        return {"strategy": strategy, "seed": seed, "status": "failed"}
    s = json.loads((run_dir / "summary.json").read_text())
    hist = s.get("eval_history", [])
    return {
        "strategy": strategy,
        "seed": seed,
        "status": s["status"],
        "warm_start_acc": hist[0]["val/math/accuracy"] if hist else None,
        "final_acc": s["metrics"].get("val/math/accuracy"),
        "best_acc": max((h["val/math/accuracy"] for h in hist), default=None),
        "steps": s["steps"],
        "tokens": s["tokens_generated"],
        "wall_s": time.time() - t0,
        "train_s": s["wall_time_s"],
        "curve": [(h["step"], h["val/math/accuracy"]) for h in hist],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategies", default="srpo,vapo,dapo,gfpo,top2,random")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--minutes", type=float, default=0, help="also stop each run after this wall time")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--out", default="artifacts/bench_learning")
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for every run")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rows = []
    for strategy in args.strategies.split(","):
        for seed in map(int, args.seeds.split(",")):
            print(f"running {strategy} seed {seed} ...", file=sys.stderr, flush=True)
            rows.append(run_one(out, strategy, seed, args))
            (out / "results.json").write_text(json.dumps(rows, indent=2))

    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    lines = [
        "| strategy | seeds | warm start acc | acc after RL | gain (pts) | best acc | steps | tokens generated | wall time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for strategy in args.strategies.split(","):
        ok = [r for r in rows if r["strategy"] == strategy and r["status"] == "completed"]
        if not ok:
            lines.append(f"| {strategy} | 0 | failed | | | | | | |")
            continue
        w, f = med([r["warm_start_acc"] for r in ok]), med([r["final_acc"] for r in ok])
        lines.append(
            f"| {strategy} | {len(ok)} | {w:.3f} | {f:.3f} | {100 * (f - w):+.1f} | {med([r['best_acc'] for r in ok]):.3f} "
            f"| {med([r['steps'] for r in ok]):.0f} | {med([r['tokens'] for r in ok]):,.0f} | {med([r['wall_s'] for r in ok]):.0f} |"
        )
    table = "\n".join(lines)
    (out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
