"""Build a run from its composed Hydra config, train it, and write its results.

`run(cfg)` is what `gfpo-bench` calls: compose -> instantiate the boxes -> trainer.fit -> save the
final model, summary.json, and return the metric a sweeper optimises.

Distributed (`trainer.devices=2 trainer.strategy=ddp`): Lightning's launcher re-runs the same command
for the other ranks (same run dir). Every rank trains (module.py, datamodule.py); evaluation runs on
global rank 0 (callbacks/evaluation.py); only global rank 0 writes checkpoints, metrics.csv, W&B,
final_model/ and summary.json, which then carries a `ddp` entry (tokens and weight hashes per rank).
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from gfpo_bench.callbacks.evaluation import EvalCallback, load_tasks
from gfpo_bench.callbacks.pair_table import PairTableCallback
from gfpo_bench.callbacks.preemption import SaveOnSigterm
from gfpo_bench.checkpoint_io import AtomicCheckpointIO
from gfpo_bench.csv_log import CSVResume
from gfpo_bench.datamodule import PromptDataModule
from gfpo_bench.errors import Preempted
from gfpo_bench.loggers import build_loggers, finish_wandb, publish_summary
from gfpo_bench.loss import PairwiseLoss
from gfpo_bench.models.factory import build_model, max_context
from gfpo_bench.models.saving import check_push_to_hub, save_final_model
from gfpo_bench.models.sft import SFTConfig, supervised_finetune
from gfpo_bench.module import PairwiseRLModule
from gfpo_bench.rewards.reward import Reward
from gfpo_bench.sampling.base import SAMPLERS, GenerationConfig
from gfpo_bench.schedule import build_schedule
from gfpo_bench.validation import validate
from gfpo_bench.warmstart import init_optimizer_state, load_init_weights, resume_checkpoint

log = logging.getLogger(__name__)


def run_dir_of() -> Path:
    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path.cwd()


def build_sampler(cfg: DictConfig, tok, formatter, model):
    s = OmegaConf.to_container(cfg.sampler, resolve=True)
    name = s.pop("name")
    gen = GenerationConfig(**{k: s.pop(k) for k in list(s) if k in GenerationConfig.__dataclass_fields__})
    return SAMPLERS.get(name)(tok, formatter, gen, max_context(model), **s)


def summarise_pairs(history: list[dict]) -> dict[str, float]:
    keys = {
        "train/pairs": "pairs_per_step",
        "train/pairable_group_rate": "pairable_group_rate",
        "train/reward/correct": "sampled_train_accuracy",
        "train/reward_gap": "reward_gap",
        "train/prefix_frac": "prefix_frac",
        "train/diverge_is_first_wrong": "diverge_is_first_wrong",
    }
    out = {}
    for k, name in keys.items():
        vals = [h[k] for h in history if k in h and not math.isnan(h[k])]
        if vals:
            out[name] = sum(vals) / len(vals)
    return out


def budget_used(cfg: DictConfig, fields: dict) -> dict:
    """The limits, what the run spent, and which limit ended it (the equal-compute check)."""
    b = {
        "max_steps": cfg.trainer.get("max_steps"),
        "max_tokens": cfg.budget.max_tokens,
        "tokens_used": fields.get("tokens_generated"),
        "steps_used": fields.get("steps"),
        "stopped_by": None,
    }
    if fields.get("status") == "completed":
        spent = b["max_tokens"] is not None and (b["tokens_used"] or 0) >= b["max_tokens"]
        b["stopped_by"] = "max_tokens" if spent else "max_steps"
    return b


def write_summary(run_dir: Path, cfg: DictConfig, **fields) -> Path:
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    summary = {
        "method": cfg.method,
        "seed": cfg.seed,
        "task": fields.pop("task_name", None),
        "stage": cfg.stage,
        "overrides": overrides,
        "budget": budget_used(cfg, fields),
        **fields,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    path = run_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str))
    return path


def run(cfg: DictConfig) -> dict:
    """Train (or SFT) one run; returns the summary dict (also written to summary.json)."""
    t0 = time.time()
    run_dir = run_dir_of()
    validate(cfg)  # the CLI has done it already; for callers that skip the CLI (tests, scripts)
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")
    if cfg.model.get("threads"):
        torch.set_num_threads(int(cfg.model.threads))  # tiny models: one thread beats contention

    check_push_to_hub(cfg.model.get("push_to_hub"))  # offline or no token: fail now, not after training
    task = hydra.utils.instantiate(cfg.task)
    task_key = json.dumps(OmegaConf.to_container(cfg.task, resolve=True), sort_keys=True)
    model, tok, formatter = build_model(cfg.model, task, task_key)
    if cfg.init_from:
        load_init_weights(model, cfg.init_from)
    if cfg.stage == "sft":
        return run_sft(cfg, task, model, tok, formatter, run_dir, t0)

    sampler = build_sampler(cfg, tok, formatter, model)
    for p in task.problems("val")[:1] + task.problems("train")[:1]:
        sampler.encode_prompts(task, [p])  # fail now, with one line, if prompts do not fit the context
    need = max(
        len(tok(p.solution, add_special_tokens=False)["input_ids"]) + 1 for p in task.problems("train")[:200]
    )
    if need > sampler.gen.max_new_tokens:  # e.g. task=code needs ~112: cut-off completions never pass
        log.warning(
            "%s reference solutions take up to %d tokens but sampler.max_new_tokens=%d: completions "
            "will be cut off (raise sampler.max_new_tokens)",
            task.name,
            need,
            sampler.gen.max_new_tokens,
        )
    reward = Reward(
        OmegaConf.to_container(cfg.reward.weights),
        cfg.reward.process,
        cfg.reward.wrong_final,
        cfg.reward.noise,
        seed=cfg.seed,
    )
    schedule = build_schedule(cfg)
    opt_state = init_optimizer_state(cfg.init_from) if cfg.init_from and cfg.get("init_optimizer") else None
    module = PairwiseRLModule(
        model,
        tok,
        task,
        sampler,
        reward,
        schedule,
        PairwiseLoss(cfg.loss.beta, cfg.loss.form, cfg.loss.positive_lambda),
        hydra.utils.instantiate(cfg.optim),
        use_reference=cfg.loss.use_reference,
        max_tokens=cfg.budget.max_tokens,
        seed=cfg.seed,
        init_optimizer_state=opt_state,
        logits_budget=cfg.model.get("logits_budget"),
    )
    module.train_pool = task.problems("train")

    is_multirun = HydraConfig.initialized() and getattr(HydraConfig.get().mode, "name", "") == "MULTIRUN"
    group = Path(HydraConfig.get().sweep.dir).name if is_multirun else None
    name = f"{cfg.method}-{run_dir.name}"
    ev = cfg.callbacks.eval
    eval_cb = EvalCallback(
        split=ev.split,
        every_n_steps=ev.every_n_steps,
        max_problems=ev.max_problems,
        at_start=ev.at_start,
        max_new_tokens=ev.get("max_new_tokens"),
        extra_tasks=load_tasks(ev.get("extra_tasks") or []),
        sampled_n=ev.get("sampled_n", 4),
    )
    ckpt_cb = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=cfg.callbacks.checkpoint.every_n_train_steps,
    )
    trainer = hydra.utils.instantiate(
        cfg.trainer,
        logger=build_loggers(cfg, run_dir, name, group),
        callbacks=[
            eval_cb,
            ckpt_cb,
            TQDMProgressBar(refresh_rate=1),
            PairStatsRecorder(),
            PairTableCallback(**cfg.callbacks.pair_table),
            SaveOnSigterm(run_dir / "checkpoints" / "last.ckpt"),  # after the recorders: a full step
            CSVResume(),  # metrics.csv keeps the rows before the checkpoint a run resumes from
        ],
        default_root_dir=str(run_dir),
        use_distributed_sampler=False,  # PromptOrder shards the prompts itself (datamodule.py)
        plugins=[AtomicCheckpointIO()],  # a failed or killed save leaves the previous checkpoint
    )
    ckpt = resume_checkpoint(run_dir, cfg.resume)
    data = PromptDataModule(task, cfg.prompts_per_step, cfg.seed)  # its order resumes too
    # Lightning checks only the DataLoader for resumability; the order's state is the DataModule's
    warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
    try:
        trainer.fit(module, datamodule=data, ckpt_path=ckpt)
    except SIGTERMException:
        finish_wandb(exit_code=1)
        raise Preempted(run_dir / "checkpoints" / "last.ckpt", trainer.global_step) from None
    # last.ckpt = the final state (weights and optimizer), for init_from=<this run> init_optimizer=true
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # every rank calls, rank 0 writes
    if not trainer.is_global_zero:  # DDP: global rank 0 writes the results
        return {}

    ddp = module.ddp_report  # None in a single process
    final_dir = save_final_model(
        module.model, tok, run_dir, cfg.model.get("merge_lora", False), cfg.model.get("push_to_hub")
    )
    metrics = dict(getattr(module, "final_metrics", {}))
    summary_path = write_summary(
        run_dir,
        cfg,
        task_name=task.name,
        status="completed",
        error=None,
        metrics=metrics,
        pair_stats=summarise_pairs(module.pair_history),
        tokens_generated=module.tokens_generated,
        wall_time_s=time.time() - t0,
        steps=trainer.global_step,
        skipped_batches=module.skipped_batches,
        nonfinite_steps=module.nonfinite_steps,
        reward_faults=sum(ddp["reward_faults_per_rank"]) if ddp else reward.faults,
        **({"ddp": ddp} if ddp else {}),
        warm_start=warm_start_metrics(cfg, eval_cb.history),
        eval_history=eval_cb.history,
        schedule_switches=schedule.switches,
        final_model=str(final_dir),
        checkpoint=str(run_dir / "checkpoints" / "last.ckpt"),
    )
    summary = json.loads(summary_path.read_text())
    publish_summary(trainer.loggers, summary)
    finish_wandb()  # the next run in this process (a sweep job, a test) must not log into this one
    print_outcome(run_dir, final_dir, summary_path, metrics)  # last, so it is what a user sees
    return summary


def warm_start_metrics(cfg: DictConfig, history: list[dict]) -> dict:
    """What the run started from: its step-0 evaluation (greedy and sampled accuracy) and, for the
    embedded model, the SFT steps of its warm start. A resumed run keeps its first evaluation."""
    out: dict = {
        "sft_steps": cfg.model.sft.steps
        if cfg.model.get("sft") and not cfg.model.get("name_or_path")
        else None
    }
    if cfg.init_from:
        out["init_from"] = str(cfg.init_from)
    first = history[0] if history and history[0].get("step") == 0 else {}
    out.update({k: v for k, v in first.items() if k.startswith("val/") and k != "val/tokens_generated"})
    return out


def run_sft(cfg, task, model, tok, formatter, run_dir: Path, t0: float) -> dict:
    """stage=sft: supervised training on reference solutions; its final_model/ can be `init_from`."""
    from gfpo_bench.eval.evaluate import evaluate_policy
    from gfpo_bench.policies.model import ModelPolicy

    sft = SFTConfig(**cfg.model.get("sft", {})) if cfg.model.get("sft") else SFTConfig()
    if cfg.trainer.get("max_steps"):
        sft.steps = int(cfg.trainer.max_steps)
    losses = supervised_finetune(model, tok, task, sft, seed=cfg.seed, formatter=formatter)
    policy = ModelPolicy(model, tok, task, formatter, cfg.sampler.max_new_tokens)
    metrics = evaluate_policy(policy, task, task.problems("val")[: cfg.callbacks.eval.max_problems]).metrics
    metrics["train/sft_loss"] = losses[-1] if losses else float("nan")
    final_dir = save_final_model(
        model, tok, run_dir, cfg.model.get("merge_lora", False), cfg.model.get("push_to_hub")
    )
    path = write_summary(
        run_dir,
        cfg,
        task_name=task.name,
        status="completed",
        error=None,
        metrics=metrics,
        pair_stats={},
        tokens_generated=0,
        wall_time_s=time.time() - t0,
        steps=sft.steps,
        final_model=str(final_dir),
    )
    print_outcome(run_dir, final_dir, path, metrics)
    return json.loads(path.read_text())


class PairStatsRecorder(L.Callback):
    """Keeps each step's pair analytics on the module (for the pair stats in summary.json)."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        # callback_metrics keep a metric's last value until it is logged again (e.g. train/loss on a
        # skipped batch); a resumed trainer starts empty, so carry the last entry's values forward
        # (a no-op in an uninterrupted run, where they are all still in callback_metrics)
        last = module.pair_history[-1] if module.pair_history else {}
        m = trainer.callback_metrics
        module.pair_history.append({**last, **{k: float(v) for k, v in m.items() if k.startswith("train/")}})


def print_outcome(run_dir: Path, final_dir: Path, summary: Path, metrics: dict) -> None:
    shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.startswith("val/"))
    print(f"\nrun dir:      {run_dir}\nfinal model:  {final_dir}\nsummary:      {summary}")
    print(f"metrics csv:  {run_dir / 'csv' / 'metrics.csv'}\nfinal:        {shown}")
