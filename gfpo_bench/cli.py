"""`gfpo-bench`: the Hydra entry point. Compose the config, run, report.

    gfpo-bench                                   # embedded default: tiny model, task=arith, CPU
    gfpo-bench pairing=gfpo sampler=branch seed=1
    gfpo-bench -m pairing=srpo,vapo,dapo,gfpo seed=0,1,2 hydra/launcher=joblib

Bad input (unknown strategy, missing model path, empty dataset, prompt longer than the context)
ends a single run with one `error:` line and exit code 2. In a multirun, a failed job writes a
summary.json with status "failed" and the sweep goes on; running the same sweep again (same
`hydra.sweep.dir`) skips its completed jobs and resumes the interrupted ones.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sys
import time
import traceback

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from gfpo_bench.errors import ConfigError
from gfpo_bench.loggers import finish_wandb
from gfpo_bench.models.loading import ModelLoadError
from gfpo_bench.sampling.base import PromptTooLongError
from gfpo_bench.warmstart import completed_summary

log = logging.getLogger("gfpo_bench")
USER_ERRORS = (ConfigError, ModelLoadError, PromptTooLongError, FileNotFoundError, ValueError)


def is_user_error(e: BaseException) -> bool:
    """Our own checks of the user's input, not a ValueError deep inside a library (that is a bug,
    shown with its traceback)."""
    if isinstance(e, (ConfigError, ModelLoadError, PromptTooLongError)):
        return True
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return isinstance(e, USER_ERRORS) and tb is not None and "gfpo_bench" in tb.tb_frame.f_code.co_filename


MAX_RUN_ID = 150  # file names are limited to 255 bytes; overrides with paths (init_from=...) get long


def _run_id(override_dirname: str) -> str:
    """Run dir name from the command line overrides ('default' when there are none). An overlong
    name is cut and ends in a hash of the whole, so two different runs never share a dir."""
    rid = override_dirname.replace("/", "_") or "default"
    if len(rid) > MAX_RUN_ID:
        rid = rid[: MAX_RUN_ID - 9] + "-" + hashlib.sha1(rid.encode()).hexdigest()[:8]
    return rid


if not OmegaConf.has_resolver("run_id"):
    OmegaConf.register_new_resolver("run_id", _run_id)


def _metric(summary: dict, name: str) -> float | None:
    val = summary.get("metrics", {}).get(name)
    return None if val is None else float(val)


def _failure_value() -> float:
    """What a failed job returns to the sweeper: NaN, except to an optimising sweeper (Optuna), which
    would abort the whole study on NaN; it gets the worst value for its direction instead."""
    direction = str(OmegaConf.select(HydraConfig.get(), "sweeper.direction", default="")).lower()
    return -math.inf if "max" in direction else math.inf if "min" in direction else math.nan


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from gfpo_bench.train import run, run_dir_of, write_summary

    multirun = HydraConfig.get().mode.name == "MULTIRUN"
    t0 = time.time()
    run_dir = run_dir_of()
    done = completed_summary(run_dir)
    if multirun and done is not None and cfg.resume == "auto":  # re-running a sweep finishes it
        log.info("job %s already completed: skipped (resume=never trains it again)", run_dir.name)
        value = _metric(done, cfg.optimized_metric)
        return _failure_value() if value is None else value
    try:
        value = _metric(run(cfg), cfg.optimized_metric)
        if value is None and multirun:
            log.error("job %s reports no optimized_metric=%s", run_dir.name, cfg.optimized_metric)
            return _failure_value()
        return value
    except Exception as e:  # noqa: BLE001  (reported, recorded, then re-raised or swallowed)
        finish_wandb(exit_code=1)
        user_error = is_user_error(e)
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        run_dir.mkdir(parents=True, exist_ok=True)
        if completed_summary(run_dir) is None:  # never overwrite a finished run's results
            write_summary(
                run_dir,
                cfg,
                status="failed",
                error=msg,
                metrics={},
                pair_stats={},
                tokens_generated=0,
                wall_time_s=time.time() - t0,
                steps=0,
            )
        if not user_error or os.environ.get("GFPO_BENCH_DEBUG"):
            traceback.print_exc()
        if multirun:
            log.error("job %s failed: %s (the sweep goes on)", run_dir.name, msg)
            return _failure_value()
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
    finally:
        # Jobs of a sweep can share a process (basic launcher, joblib workers), and Lightning's
        # WandbLogger reuses any W&B run still open: each job closes its own.
        finish_wandb()


if __name__ == "__main__":
    main()
