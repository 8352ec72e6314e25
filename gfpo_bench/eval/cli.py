"""`gfpo-bench-eval`: score any checkpoint, HF model or reference policy on one task.

    gfpo-bench-eval model=reference task=gsm8k task.path=../shared/data/gsm8k limit=50
    gfpo-bench-eval task=code checkpoint=outputs/srpo/default split=val
    gfpo-bench-eval model=hf model.name_or_path=Qwen/Qwen2.5-0.5B-Instruct task=mbpp n=10 ks=[1,5,10]

A Hydra entry point with its own primary config (`conf/eval.yaml`) that reuses the `task/` and
`model/` groups of training. It writes `metrics.json` (metrics, counts, resolved config) and
`samples.jsonl` (one record per scored sample) into its run dir and prints the metrics. Metric
names are those of the training callbacks, prefixed by the split evaluated (`test/math/accuracy`,
`test/<task>/accuracy`, `test/code/pass@k`, `test/<task>/pass@k`); pass@k uses the unbiased
estimator of Chen et al. 2021 over `n` samples per problem (`eval/passk.py`).

`checkpoint=` takes a run dir (its final_model/, else checkpoints/last.ckpt), a Lightning .ckpt, or
a saved HF model dir. A saved model dir is loaded as the model itself (weights and tokenizer); a
.ckpt is loaded into the model the config builds (`warmstart.load_init_weights`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from gfpo_bench.errors import ConfigError, is_user_error
from gfpo_bench.eval.evaluate import evaluate_policy
from gfpo_bench.policies import CorruptedReferencePolicy, ReferencePolicy
from gfpo_bench.registry import Registry
from gfpo_bench.tasks.base import Task

log = logging.getLogger("gfpo_bench.eval")

# Model-free policies, by `model.kind`; any other kind is a model built by models/factory.py.
REFERENCE_POLICIES: Registry = Registry("reference policy")


@REFERENCE_POLICIES.register("reference")
def reference(model_cfg: DictConfig) -> ReferencePolicy:
    return ReferencePolicy()


@REFERENCE_POLICIES.register("reference_corrupted")
def reference_corrupted(model_cfg: DictConfig) -> CorruptedReferencePolicy:
    return CorruptedReferencePolicy(seed=model_cfg.get("seed", 0))


class RepeatedPolicy:
    """n completions per problem from a deterministic policy that gives one."""

    def __init__(self, policy) -> None:
        self.policy = policy

    def complete(self, problems: list, n: int = 1) -> list[str]:
        return self.policy.complete([p for p in problems for _ in range(n)])


def saved_model_dir(checkpoint: str) -> Path | None:
    """The HF model dir a checkpoint names (itself, or a run dir's final_model/); None otherwise."""
    path = Path(checkpoint).expanduser()
    for cand in (path, path / "final_model"):
        if (cand / "config.json").is_file():
            return cand
    return None


def build_policy(cfg: DictConfig, task: Task, problems: list):
    """The policy `cfg.model` describes, with `cfg.checkpoint` loaded; generation set from cfg."""
    kind = cfg.model.kind
    if kind in REFERENCE_POLICIES:
        if cfg.checkpoint:
            raise ConfigError(f"checkpoint= needs a model; model={kind} has no weights")
        return RepeatedPolicy(REFERENCE_POLICIES.get(kind)(cfg.model))

    from gfpo_bench.models.factory import build_model, max_context
    from gfpo_bench.models.prompting import encode_prompt
    from gfpo_bench.policies.model import ModelPolicy
    from gfpo_bench.warmstart import load_init_weights

    model_cfg = cfg.model
    saved = saved_model_dir(cfg.checkpoint) if cfg.checkpoint else None
    if saved is not None:  # weights and tokenizer come from the checkpoint; no warm start built
        model_cfg = OmegaConf.merge(cfg.model, {"name_or_path": str(saved)})
    task_key = json.dumps(OmegaConf.to_container(cfg.task, resolve=True), sort_keys=True)
    model, tok, formatter = build_model(model_cfg, task, task_key)
    if cfg.checkpoint and saved is None:
        load_init_weights(model, cfg.checkpoint)
    longest = max(len(encode_prompt(tok, formatter, task, p)) for p in problems)
    room = max_context(model) - longest
    if room <= 0:
        raise ConfigError(
            f"prompts of {task.name} have up to {longest} tokens: no room in the model's context"
        )
    if room < cfg.max_new_tokens:
        log.info("max_new_tokens capped at %d so prompt + completion fit the context", room)
    return ModelPolicy(
        model, tok, task, formatter, min(cfg.max_new_tokens, room), cfg.batch_size, cfg.temperature, cfg.top_p
    )


def run_eval(cfg: DictConfig) -> dict:
    """Evaluate; write metrics.json + samples.jsonl to the run dir; return the metrics.json content."""
    t0 = time.time()
    run_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path.cwd()
    run_dir.mkdir(parents=True, exist_ok=True)
    ks = sorted({int(k) for k in (cfg.ks if OmegaConf.is_list(cfg.ks) else [cfg.ks])})
    if cfg.n < 1 or not ks or ks[0] < 1 or ks[-1] > cfg.n:
        raise ConfigError(f"need n >= 1 and 1 <= k <= n for every k; got n={cfg.n}, ks={ks}")
    torch.manual_seed(cfg.seed)
    if cfg.model.get("threads"):
        torch.set_num_threads(int(cfg.model.threads))  # as in training: tiny models run best on one

    task = hydra.utils.instantiate(cfg.task)
    problems = task.problems(cfg.split)[: cfg.limit]
    policy = build_policy(cfg, task, problems)
    result = evaluate_policy(policy, task, problems, prefix=cfg.split, n=cfg.n, ks=tuple(ks))

    with open(run_dir / "samples.jsonl", "w") as f:
        for i, record in enumerate(result.records):
            f.write(json.dumps({"split": cfg.split, "sample": i % cfg.n, **record}) + "\n")
    out = {
        "task": task.name,
        "kind": task.kind,
        "split": cfg.split,
        "model": cfg.model.kind,
        "checkpoint": cfg.checkpoint,
        "problems": len(problems),
        "n": cfg.n,
        "samples": len(result.records),
        "metrics": result.metrics,
        "wall_time_s": time.time() - t0,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    (run_dir / "metrics.json").write_text(json.dumps(out, indent=2, default=str))
    print(f"\n{task.name}/{cfg.split}: {len(problems)} problems x {cfg.n} samples, model={cfg.model.kind}")
    for k, v in sorted(result.metrics.items()):
        print(f"{k:32s} {v:.4f}")
    print(f"metrics:  {run_dir / 'metrics.json'}\nsamples:  {run_dir / 'samples.jsonl'}")
    return out


@hydra.main(config_path="../conf", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = run_eval(cfg)["metrics"]
    except Exception as e:  # noqa: BLE001  (user errors: one line; bugs: the traceback)
        if not is_user_error(e):
            raise
        print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        sys.exit(2)
    return next((v for k, v in metrics.items() if k.endswith(("/math/accuracy", "/code/pass@1"))), None)


if __name__ == "__main__":
    main()
