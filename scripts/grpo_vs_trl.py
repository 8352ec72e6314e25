# python scripts/grpo_vs_trl.py                          # the grid: 2 lrs x 3 seeds x (gfpo-bench grpo, TRL), 2 at a time
# python scripts/grpo_vs_trl.py --methods srpo,vapo      # the same grid for gfpo-bench's pairwise strategies
# python scripts/grpo_vs_trl.py --report                 # the table from the results already written
# python scripts/grpo_vs_trl.py --side trl --lr 1e-4 --seed 0   # one run (--side: trl or a pairing= option)
"""gfpo-bench's GRPO against TRL's GRPOTrainer on the same work, to the same token budget.

Same warm start (the shipped default), same prompts (arith's training split, as gfpo-bench formats
them), same reward (gfpo-bench's decomposed `Reward`), 8 prompts x 8 completions of <= 48 tokens at
T = 1, AdamW with weight decay 0, gradient clipping at 1.0, a CONSTANT learning rate on both sides
(TRL's default would decay linearly), one update per batch (on-policy), no KL (TRL's default beta 0),
group std scaling, and the token-level loss (TRL `loss_type="dapo"`, gfpo-bench
`pairing.aggregation=token`: TRL's default, pinned here). Each run stops once it has generated
`--max-tokens` completion tokens, counted the same way on both sides (gfpo-bench's
`Rollouts.generated_tokens` of the sampled texts). Each final model is then scored by the same code,
greedy, on the 500 val and the 500 test problems. The lr is chosen on val; test is reported.

TRL is not a gfpo-bench dependency: `pip install trl accelerate`. Results go to --out (one JSON per
run; finished runs are skipped on a re-run), the table to <out>/report.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LRS = ("3e-5", "1e-4")
SEEDS = (0, 1, 2)


def default_cfg(*overrides: str):
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="gfpo_bench.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def score(model_dir: Path) -> dict[str, float]:
    """Greedy accuracy on the val and test splits (500 each), as the evaluation callback scores."""
    import hydra

    from gfpo_bench.eval.evaluate import evaluate_policy
    from gfpo_bench.models.loading import load_model_and_tokenizer
    from gfpo_bench.models.prompting import PromptFormatter
    from gfpo_bench.policies.model import ModelPolicy

    cfg = default_cfg()
    task = hydra.utils.instantiate(cfg.task)
    model, tok = load_model_and_tokenizer(str(model_dir), "float32")
    policy = ModelPolicy(model, tok, task, PromptFormatter(), cfg.sampler.max_new_tokens, 100)
    return {
        f"{split}_accuracy": evaluate_policy(policy, task, task.problems(split)[:500]).metrics[
            "val/math/accuracy"
        ]
        for split in ("val", "test")
    }


def run_ours(method: str, lr: str, seed: int, max_tokens: int, out: Path) -> dict:
    run_dir = out / f"{method}-lr{lr}-s{seed}"
    cmd = [
        sys.executable, "-m", "gfpo_bench.cli", f"pairing={method}", f"optim.lr={lr}", f"seed={seed}",
        f"budget.max_tokens={max_tokens}", "trainer.max_steps=100000", "logger=csv",
        "callbacks.eval.every_n_steps=0", "callbacks.eval.at_start=false", "callbacks.eval.sampled_n=0",
        "callbacks.eval.max_problems=50", f"hydra.run.dir={run_dir}", "resume=never",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "steps": summary["steps"],
        "tokens": summary["tokens_generated"],
        **score(run_dir / "final_model"),
    }


def run_trl(lr: str, seed: int, max_tokens: int, out: Path) -> dict:
    import torch
    from _trl_grpo_step import trl_work  # the same work as bench_speed's TRL side
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(1)
    spent = {"tokens": 0, "steps": 0}

    def count(rollouts) -> None:  # generated tokens, counted as gfpo-bench counts its own
        spent["tokens"] += rollouts.generated_tokens

    model, tok, data, reward_fn = trl_work(count)

    class Budget(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            spent["steps"] = state.global_step
            if spent["tokens"] >= max_tokens:
                control.should_training_stop = True

    save = out / f"trl-lr{lr}-s{seed}"
    with tempfile.TemporaryDirectory() as tmp:
        conf = GRPOConfig(
            output_dir=tmp, per_device_train_batch_size=64, num_generations=8, max_completion_length=48,
            temperature=1.0, top_p=1.0, top_k=0, learning_rate=float(lr), lr_scheduler_type="constant",
            warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, beta=0.0, loss_type="dapo",
            scale_rewards="group", num_iterations=1, max_steps=100000, logging_steps=1000,
            save_strategy="no", report_to=[], use_cpu=True, bf16=False, dataloader_num_workers=0, seed=seed,
        )  # fmt: skip
        trainer = GRPOTrainer(
            model=model, reward_funcs=reward_fn, args=conf, train_dataset=data, processing_class=tok,
            callbacks=[Budget()],
        )  # fmt: skip
        trainer.train()
        trainer.save_model(str(save))
        tok.save_pretrained(str(save))
    return {"steps": spent["steps"], "tokens": spent["tokens"], **score(save)}


def one(side: str, lr: str, seed: int, max_tokens: int, out: Path) -> dict:
    result_file = out / f"{side}-lr{lr}-s{seed}.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    result = (
        run_trl(lr, seed, max_tokens, out) if side == "trl" else run_ours(side, lr, seed, max_tokens, out)
    )
    result.update(side=side, lr=lr, seed=seed, max_tokens=max_tokens)
    result_file.write_text(json.dumps(result, indent=2))
    return result


def mean_ci(xs: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval."""
    from scipy import stats

    m = statistics.mean(xs)
    if len(xs) < 2:
        return m, float("nan")
    return m, stats.t.ppf(0.975, len(xs) - 1) * statistics.stdev(xs) / len(xs) ** 0.5


def report(out: Path) -> str:
    rows = [json.loads(f.read_text()) for f in sorted(out.glob("*-lr*-s*.json"))]
    lines = [
        "| side | lr | seeds | steps (median) | val acc (mean ± 95% CI) | test acc (mean ± 95% CI) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    best = {}
    sides = ["grpo", "trl"] + sorted({r["side"] for r in rows} - {"grpo", "trl"})
    names = {"grpo": "gfpo-bench grpo", "trl": "TRL GRPOTrainer"}
    for side in sides:
        for lr in LRS:
            runs = [r for r in rows if r["side"] == side and r["lr"] == lr]
            if not runs:
                continue
            val, test = (
                mean_ci([r["val_accuracy"] for r in runs]),
                mean_ci([r["test_accuracy"] for r in runs]),
            )
            steps = statistics.median(r["steps"] for r in runs)
            lines.append(
                f"| {names.get(side, 'gfpo-bench ' + side)} | {lr} | {len(runs)} | {steps:.0f} "
                f"| {val[0]:.1%} ± {val[1]:.1%} | {test[0]:.1%} ± {test[1]:.1%} |"
            )
            if side not in best or val[0] > best[side][1]:
                best[side] = (lr, val[0], [r["test_accuracy"] for r in runs])
    text = "\n".join(lines)
    from scipy import stats

    for lr in LRS:  # the implementation check: the same method and lr on both sides
        ours = [r["test_accuracy"] for r in rows if r["side"] == "grpo" and r["lr"] == lr]
        theirs = [r["test_accuracy"] for r in rows if r["side"] == "trl" and r["lr"] == lr]
        if min(len(ours), len(theirs)) > 1:
            p = stats.ttest_ind(ours, theirs, equal_var=False).pvalue
            text += (
                f"\n\nlr {lr}: gfpo-bench grpo {statistics.mean(ours):.1%} vs TRL {statistics.mean(theirs):.1%} on "
                f"test (difference {statistics.mean(ours) - statistics.mean(theirs):+.1%}, Welch two-sided p = {p:.2g})."
            )
    if "grpo" in best:
        lr_g, _, grpo = best["grpo"]
        text += "\n\nEach method at the lr chosen on val; test accuracy against gfpo-bench's grpo at its own:"
        for side in sides:
            if side == "grpo" or side not in best:
                continue
            lr_s, _, other = best[side]
            enough = min(len(other), len(grpo)) > 1
            p = stats.ttest_ind(other, grpo, equal_var=False).pvalue if enough else float("nan")
            text += (
                f"\n- {names.get(side, 'gfpo-bench ' + side)} (lr {lr_s}) {statistics.mean(other):.1%} vs grpo "
                f"(lr {lr_g}) {statistics.mean(grpo):.1%}: difference "
                f"{statistics.mean(other) - statistics.mean(grpo):+.1%}, Welch two-sided p = {p:.2g}"
            )
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", help="trl, or a gfpo-bench pairing= option (grpo, srpo, ...)")
    ap.add_argument("--methods", default="grpo,trl", help="the grid's sides, comma-separated")
    ap.add_argument("--lr", default="1e-4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=200_000)
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "grpo_vs_trl")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (one CPU thread each)")
    ap.add_argument("--report", action="store_true", help="only print the table of finished runs")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "disabled")
    if args.side:
        print(json.dumps(one(args.side, args.lr, args.seed, args.max_tokens, args.out)))
        return
    if not args.report:
        grid = [(side, lr, seed) for seed in SEEDS for lr in LRS for side in args.methods.split(",")]
        cmd = [sys.executable, __file__, "--max-tokens", str(args.max_tokens), "--out", str(args.out)]

        def child(job):
            side, lr, seed = job
            proc = subprocess.run(
                [*cmd, "--side", side, "--lr", lr, "--seed", str(seed)], capture_output=True, text=True
            )
            status = "ok" if proc.returncode == 0 else f"FAILED: {proc.stderr.strip().splitlines()[-1:]}"
            print(f"{side} lr={lr} seed={seed}: {status}", flush=True)

        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(child, grid))
    text = report(args.out)
    (args.out / "report.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
