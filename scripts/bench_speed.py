"""Where a training step's time goes: a per-phase table and seconds per step.

    python scripts/bench_speed.py                       # embedded default: 8 prompts x 8 paths, <= 48 tokens
    python scripts/bench_speed.py --model qwen0.5b      # random-init Qwen2.5-0.5B config, short sequences
    python scripts/bench_speed.py --steps 20 -- pairing=gfpo sampler=branch   # any gfpo-bench overrides
    python scripts/bench_speed.py --trl -- pairing=grpo  # GRPO against TRL's GRPOTrainer, beta 0 both

It runs the real entry point (`gfpo_bench.train.run`: Lightning, the module, the real callbacks, no
evaluation) and times each phase of the loop with wrappers installed from outside, so the code being
measured is exactly what a user runs:

    rollout   sampler.sample (generation and building Rollouts)
    reward    Reward.__call__ (answer checking, step verification)
    pairing   the strategy (pair selection and divergence bookkeeping; grpo: its advantages)
    loss fwd  module.signal_loss (policy and reference log-probs, the pairwise or GRPO loss)
    backward  loss.backward()
    optimizer clipping, optimizer.step, zero_grad
    other     the rest of the step (Lightning, logging, callbacks)

The first `--warmup` steps are dropped (allocator and thread-pool warm-up). One torch thread (as
`model.threads` sets for the embedded default). With `--trl`, the same work is run through TRL's
GRPOTrainer (if `trl` is installed; it is not a dependency of gfpo-bench) in the same window, and the
ratio of the two medians is printed: the comparison the README quotes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ["rollout", "reward", "pairing", "loss fwd", "backward", "optimizer", "other"]

# The comparison the issue defines: 8 prompts x 8 completions of <= 48 new tokens, eval off.
COMMON = [
    "logger=csv",
    "prompts_per_step=8",
    "sampler.k=8",
    "sampler.max_new_tokens=48",
    "callbacks.eval.at_start=false",
    "callbacks.eval.every_n_steps=100000",
    "callbacks.checkpoint.every_n_train_steps=100000",
    "callbacks.pair_table.every_n_steps=100000",
    "callbacks.eval.max_problems=1",  # the end-of-run evaluation is not part of a step
]


class PhaseTimer:
    """Accumulates wall time per phase for the current step; `steps` holds one dict per step."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.steps: list[dict[str, float]] = []

    def wrap(self, phase: str, fn):
        @functools.wraps(fn)
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.current[phase] += time.perf_counter() - t

        return timed


def instrument(timer: PhaseTimer):
    """Install the phase wrappers; returns the Lightning callback that closes each step."""
    import lightning as L

    from gfpo_bench.grpo import GRPO
    from gfpo_bench.module import PairwiseRLModule
    from gfpo_bench.pairing.base import PairingStrategy
    from gfpo_bench.rewards.reward import Reward
    from gfpo_bench.sampling.base import SAMPLERS

    for name in SAMPLERS.names():
        cls = SAMPLERS.get(name)
        cls.sample = timer.wrap("rollout", cls.sample)
    Reward.__call__ = timer.wrap("reward", Reward.__call__)
    PairingStrategy.__call__ = timer.wrap("pairing", PairingStrategy.__call__)
    GRPO.__call__ = timer.wrap("pairing", GRPO.__call__)  # pairing=grpo: its advantages
    PairwiseRLModule.signal_loss = timer.wrap("loss fwd", PairwiseRLModule.signal_loss)

    class StepClock(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            timer.current = defaultdict(float)
            self.t0 = time.perf_counter()

        def on_before_backward(self, trainer, module, loss):
            self.tb = time.perf_counter()

        def on_after_backward(self, trainer, module):
            timer.current["backward"] += time.perf_counter() - self.tb

        def on_before_optimizer_step(self, trainer, module, optimizer):
            self.to = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            now = time.perf_counter()
            if hasattr(self, "to") and self.to >= self.t0:
                timer.current["optimizer"] += now - self.to
            step = dict(timer.current)
            step["total"] = now - self.t0
            step["other"] = step["total"] - sum(v for k, v in step.items() if k != "total")
            timer.steps.append(step)

    return StepClock()


def build_qwen05b_dir(root: Path) -> Path:
    """A random-init model with Qwen2.5-0.5B's config and the embedded char-level tokenizer (the
    tokenizer does not change the model's cost: vocab and shapes are Qwen's)."""
    import torch
    from transformers import Qwen2ForCausalLM

    from gfpo_bench.models.real_shapes import qwen25_05b_config
    from gfpo_bench.models.tokenizer import build_char_tokenizer

    out = root / "qwen2.5-0.5b-random"
    if (out / "config.json").exists():
        return out
    tok = build_char_tokenizer()
    torch.manual_seed(0)
    cfg = qwen25_05b_config(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def run_gfpo_bench(overrides: list[str], steps: int, warmup: int) -> list[dict]:
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import gfpo_bench.cli  # noqa: F401  (run_id resolver)
    from gfpo_bench import train

    timer = PhaseTimer()
    clock = instrument(timer)
    build = train.build  # what train.instantiate_run builds every box with

    def with_clock(node, *a, **kw):  # add the step clock to the Trainer's callbacks
        if "callbacks" in kw:
            kw["callbacks"] = [*kw["callbacks"], clock]
        return build(node, *a, **kw)

    train.build = with_clock
    with tempfile.TemporaryDirectory() as d:
        GlobalHydra.instance().clear()
        with initialize_config_module(config_module="gfpo_bench.conf", version_base="1.3"):
            cfg = compose(
                "config",
                overrides=[*COMMON, f"trainer.max_steps={steps + warmup}", *overrides],
                return_hydra_config=True,
            )
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = d
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        train.run(cfg)
    return timer.steps[warmup:]


def table(steps: list[dict], title: str) -> str:
    total = statistics.median(s["total"] for s in steps)
    lines = [
        f"{title}: {len(steps)} steps, median {total:.3f} s/step",
        f"{'phase':<10} {'s/step':>8} {'share':>7}",
    ]
    for p in PHASES:
        v = statistics.median(s.get(p, 0.0) for s in steps)
        lines.append(f"{p:<10} {v:8.3f} {100 * v / total:6.1f}%")
    pr = statistics.median(s.get("pairing", 0.0) + s.get("reward", 0.0) for s in steps)
    lines.append(f"pairing + reward: {100 * pr / total:.1f}% of a step")
    return "\n".join(lines)


def run_trl(steps: int, warmup: int, beta: float) -> float | None:
    """Median s/step of TRL's GRPOTrainer on the same work, in a child process (None if no trl)."""
    script = REPO / "scripts" / "_trl_grpo_step.py"
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            "--steps",
            str(steps + warmup),
            "--warmup",
            str(warmup),
            "--beta",
            str(beta),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if proc.returncode != 0:
        print(f"trl: not run ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'failed'})")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])["median_s_per_step"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["tiny", "qwen0.5b"], default="tiny")
    ap.add_argument("--steps", type=int, default=15, help="timed steps (after warm-up)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--trl", action="store_true", help="also time TRL's GRPOTrainer on the same work")
    ap.add_argument(
        "--hf-generate",
        action="store_true",
        help="sample with transformers' generate instead of the static-cache decoder (the 'before')",
    )
    ap.add_argument("overrides", nargs="*", help="extra gfpo-bench overrides (after --)")
    args = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")

    overrides = list(args.overrides)
    title = "gfpo-bench, embedded default"
    if args.model == "qwen0.5b":
        cache = Path(os.environ.get("GFPO_BENCH_CACHE", "~/.cache/gfpo-bench")).expanduser()
        path = build_qwen05b_dir(cache)
        # a short sequence: 2 prompts x 4 paths x 16 new tokens (a random model rambles to the limit);
        # its answers are all wrong, so flipped rewards (reward.noise) make the pairs the loss needs
        overrides = [
            "reward.noise=0.5",
            f"model.name_or_path={path}",
            "model.dtype=float32",
            "prompts_per_step=2",
            "sampler.k=4",
            "sampler.max_new_tokens=16",
            *overrides,
        ]
        title = "gfpo-bench, random-init Qwen2.5-0.5B config"
    if args.hf_generate:
        from gfpo_bench.models import generation

        generation.supports_static_decode = lambda model: False
        title += " (transformers generate)"
    steps = run_gfpo_bench(overrides, args.steps, args.warmup)
    print(table(steps, title))
    if args.trl:
        ours = statistics.median(s["total"] for s in steps)
        for beta, what in [
            (0.04, "with a reference model, as gfpo-bench"),
            (0.0, "TRL's default, no reference"),
        ]:
            theirs = run_trl(args.steps, args.warmup, beta)
            if theirs is not None:
                print(f"TRL GRPOTrainer, beta={beta} ({what}): median {theirs:.3f} s/step")
                print(f"  ratio gfpo-bench / TRL: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
