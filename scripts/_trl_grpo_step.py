"""TRL's GRPOTrainer on the work `bench_speed.py` times: the outside reference point for s/step.

Same warm start (the embedded default model and its tokenizer), same prompts (the arith task's
training split, as gfpo-bench formats them), same reward (gfpo-bench's `Reward`), 8 prompts x 8
completions of <= 48 new tokens at temperature 1, one torch thread; `--beta 0.04` keeps a reference
model as gfpo-bench's default does, `--beta 0` is TRL's own default (no reference pass). TRL is not a gfpo-bench dependency: `pip install trl accelerate`.
Prints one JSON line: {"median_s_per_step": ...}. Called by `bench_speed.py --trl`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch


def default_config():
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="gfpo_bench.conf", version_base="1.3"):
        return compose("config")


def trl_work(on_rollouts=None):
    """The work TRL is run on, as gfpo-bench sees it: (model, tokenizer, dataset, reward function).
    The default warm start, arith's training prompts as gfpo-bench formats them, and gfpo-bench's
    `Reward` on the completion texts; `on_rollouts(rollouts)` sees every scored batch (token counts)."""
    import hydra
    from datasets import Dataset
    from omegaconf import OmegaConf

    from gfpo_bench.models.factory import build_model
    from gfpo_bench.rewards.reward import Reward
    from gfpo_bench.sampling.base import rollouts_from_texts

    cfg = default_config()
    task = hydra.utils.instantiate(cfg.task)
    key = json.dumps(OmegaConf.to_container(cfg.task, resolve=True), sort_keys=True)
    model, tok, formatter = build_model(cfg.model, task, key)  # the default (shipped) warm start
    problems = {p.uid: p for p in task.problems("train")}
    data = Dataset.from_list(
        [{"prompt": formatter(tok, task.prompt(p)), "uid": p.uid} for p in problems.values()]
    )
    reward = Reward(OmegaConf.to_container(cfg.reward.weights), cfg.reward.process)

    def reward_fn(prompts, completions, uid, **_) -> list[float]:
        rollouts = rollouts_from_texts(
            tok, formatter, task, [problems[u] for u in uid], [[c] for c in completions]
        )
        if on_rollouts is not None:
            on_rollouts(rollouts)
        return reward(task, rollouts).total.tolist()

    return model, tok, data, reward_fn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=18)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--beta", type=float, default=0.04, help="KL weight; > 0 keeps a reference model")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("WANDB_MODE", "disabled")

    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    model, tok, data, reward_fn = trl_work()
    cfg = default_config()

    class Clock(TrainerCallback):
        times: list[float] = []

        def on_step_begin(self, *a, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **kw):
            self.times.append(time.perf_counter() - self.t)

    with tempfile.TemporaryDirectory() as out:
        conf = GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=64,  # completions per step: 8 prompts x 8 generations
            num_generations=8,
            max_completion_length=48,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            learning_rate=float(cfg.optim.lr),
            beta=args.beta,
            max_steps=args.steps,
            logging_steps=1000,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            bf16=False,
            dataloader_num_workers=0,
            seed=0,
        )
        clock = Clock()
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward_fn,
            args=conf,
            train_dataset=data,
            processing_class=tok,
            callbacks=[clock],
        )
        trainer.train()
    print(json.dumps({"median_s_per_step": statistics.median(clock.times[args.warmup :])}))


if __name__ == "__main__":
    main()
