"""One run: compose -> instantiate -> fit -> results (the shape of lightning-hydra-template's train.py).

Every box is built from its config node (`_target_`; `_partial_` where it needs the model or the task
first); `instantiate_run` is that wiring, in one place, which tests use to build every config without
training. stage=sft is sft_stage.py. Under DDP every rank runs this; global rank 0 writes the results.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from gfpo_bench.building import build
from gfpo_bench.callbacks import instantiate_callbacks, summary_fields
from gfpo_bench.checkpoint_io import AtomicCheckpointIO
from gfpo_bench.errors import Preempted
from gfpo_bench.loggers import build_loggers, finish_wandb, report_run
from gfpo_bench.models.factory import build_model, max_context
from gfpo_bench.models.saving import save_final_model
from gfpo_bench.schedule import build_schedule
from gfpo_bench.sft_stage import run_sft
from gfpo_bench.summary import COMPLETED, RunSummary
from gfpo_bench.validation import validate
from gfpo_bench.warmstart import init_optimizer_state, load_init_weights, resume_checkpoint


def run(cfg: DictConfig) -> dict:
    """Train (or SFT) one run; returns the summary (also written to <run dir>/summary.json)."""
    t0, run_dir = time.time(), run_dir_of()
    validate(cfg)  # the CLI has done it already; for callers that skip the CLI (tests, scripts)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")
    task = build(cfg.task)
    task_key = json.dumps(OmegaConf.to_container(cfg.task, resolve=True), sort_keys=True)  # warm-start key
    model, tok, formatter = build_model(cfg.model, task, task_key)
    if cfg.init_from:
        load_init_weights(model, cfg.init_from)
    if cfg.stage == "sft":
        return run_sft(cfg, task, model, tok, formatter, run_dir, t0)
    module, data, trainer = instantiate_run(cfg, task, model, tok, formatter, run_dir)
    fit(trainer, module, data, resume_checkpoint(run_dir, cfg.resume), run_dir)
    if not trainer.is_global_zero:  # DDP: global rank 0 writes the results
        return {}
    final_dir = save_final_model(
        module.model, tok, run_dir, cfg.model.get("merge_lora"), cfg.model.get("push_to_hub")
    )
    summary = RunSummary.from_config(
        cfg, status=COMPLETED, task=task.name, wall_time_s=time.time() - t0, steps=trainer.global_step,
        final_model=str(final_dir), checkpoint=str(run_dir / "checkpoints" / "last.ckpt"),
        **module.summary_fields(),  # tokens, skips, faults, schedule switches (DDP: all ranks')
        **summary_fields(trainer.callbacks),  # final metrics, eval history, pair statistics
    )  # fmt: skip
    return report_run(summary, run_dir, trainer.loggers)


def instantiate_run(cfg: DictConfig, task, model, tok, formatter, run_dir: Path):
    """The module, the datamodule and the trainer of an RL run, each from its config node."""
    sampler = build(cfg.sampler)(tokenizer=tok, formatter=formatter, max_context=max_context(model))
    sampler.check_task(task)  # prompts that do not fit fail now; references it would cut off warn
    opt_state = init_optimizer_state(cfg.init_from) if cfg.init_from and cfg.init_optimizer else None
    module = build(cfg.module)(
        model=model, tokenizer=tok, task=task, sampler=sampler, reward=build(cfg.reward),
        schedule=build_schedule(cfg), loss=build(cfg.loss), optimizer=build(cfg.optim),
        init_optimizer_state=opt_state,
    )  # fmt: skip
    trainer = build(
        cfg.trainer,
        logger=build_loggers(cfg, run_dir),
        callbacks=instantiate_callbacks(cfg.callbacks),
        default_root_dir=str(run_dir),
        use_distributed_sampler=False,  # PromptOrder shards the prompts itself (datamodule.py)
        plugins=[AtomicCheckpointIO()],  # a failed or killed save leaves the previous checkpoint
    )
    return module, build(cfg.data)(task=task), trainer


def fit(trainer: L.Trainer, module, data, ckpt: str | None, run_dir: Path) -> None:
    """trainer.fit, resuming from `ckpt`; SIGTERM ends it as `Preempted`; the final state is saved."""
    # Lightning checks only the DataLoader for resumability; the order's state is the DataModule's
    warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
    last = run_dir / "checkpoints" / "last.ckpt"  # at the end: the final state, for init_optimizer=true
    try:
        trainer.fit(module, datamodule=data, ckpt_path=ckpt)
    except SIGTERMException:
        finish_wandb(exit_code=1)
        raise Preempted(last, trainer.global_step) from None
    trainer.save_checkpoint(last)  # every rank calls, rank 0 writes


def run_dir_of() -> Path:  # Hydra's output dir; outside a Hydra job, the current dir
    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path.cwd()
