"""`gfpo-bench`: the Hydra entry point. Compose the config, run, report.

    gfpo-bench                                   # embedded default: tiny model, task=arith, CPU
    gfpo-bench pairing=gfpo sampler=branch seed=1
    gfpo-bench -m pairing=srpo,vapo,dapo,gfpo seed=0,1,2 hydra/launcher=joblib

Bad input (a value out of range, an unknown strategy, a missing or malformed data file, a corrupt
checkpoint, trainer=gpu without a GPU) is found by `gfpo_bench/validation.py` before anything is
built, and ends the run with one line, `error: <what is wrong and what to do>`, and exit code 2.
A fault during the run (disk full at checkpoint time, a bug) writes summary.json with status
"failed", keeps the last checkpoint, and prints one line naming the traceback's file (exit code 1).
GFPO_BENCH_DEBUG=1, HYDRA_FULL_ERROR=1 or `debug=true` also print the traceback. SIGTERM (SLURM
preemption) saves checkpoints/last.ckpt, then exits with one `preempted: ...` line and code 143.
In a multirun, a failed job writes its summary.json and the sweep goes on; running the same sweep
again (same `hydra.sweep.dir`) skips its completed jobs and resumes the interrupted ones.

Only light modules are imported at the top, so a bad value is reported in about a second.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import time
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from gfpo_bench.errors import Preempted, RunFault, debug_wanted, is_user_error
from gfpo_bench.loggers import finish_wandb
from gfpo_bench.validation import validate
from gfpo_bench.warmstart import completed_summary

log = logging.getLogger("gfpo_bench")


PREEMPTED_EXIT = 143  # 128 + SIGTERM, what a shell reports for a process SIGTERM ended
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


def _metric(metrics: dict, name: str) -> float | None:
    val = metrics.get(name)
    return None if val is None else float(val)


def _failure_value() -> float:
    """What a failed job returns to the sweeper: NaN, except to an optimising sweeper (Optuna), which
    would abort the whole study on NaN; it gets the worst value for its direction instead."""
    direction = str(OmegaConf.select(HydraConfig.get(), "sweeper.direction", default="")).lower()
    return -math.inf if "max" in direction else math.inf if "min" in direction else math.nan


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    multirun = HydraConfig.get().mode.name == "MULTIRUN"
    t0 = time.time()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    done = completed_summary(run_dir)
    if multirun and done is not None and cfg.resume == "auto":  # re-running a sweep finishes it
        log.info("job %s already completed: skipped (resume=never trains it again)", run_dir.name)
        value = _metric(done.metrics, cfg.optimized_metric)
        return _failure_value() if value is None else value
    validated = False
    try:
        validate(cfg, run_dir)
        validated = True
        from gfpo_bench.train import run  # heavy (torch, lightning): only for a valid config

        value = _metric(run(cfg).get("metrics", {}), cfg.optimized_metric)
        if value is None and multirun:
            log.error("job %s reports no optimized_metric=%s", run_dir.name, cfg.optimized_metric)
            return _failure_value()
        return value
    except Preempted as e:  # SIGTERM: last.ckpt is saved; a re-run (or a requeued job) resumes
        if multirun:
            log.warning("job %s %s", run_dir.name, e)
            return _failure_value()
        print(str(e), file=sys.stderr)
        sys.exit(PREEMPTED_EXIT)
    except Exception as e:  # noqa: BLE001  (reported, recorded, then the process exits)
        return report_failure(e, cfg, run_dir, multirun, validated, t0)
    finally:
        # Jobs of a sweep can share a process (basic launcher, joblib workers), and Lightning's
        # WandbLogger reuses any W&B run still open: each job closes its own.
        finish_wandb()


def _global_rank() -> int:
    """This process's rank under DDP (Lightning sets it from the launcher's environment); else 0."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0) or 0)


def report_failure(
    e: Exception, cfg: DictConfig, run_dir: Path, multirun: bool, validated: bool, t0: float
) -> float:
    """summary.json with status failed (unless nothing ran), then one line: `error: ...`.

    Bad input: exit 2. A fault or a bug: exit 1, the traceback goes to <run dir>/error.log and the
    line names it and the checkpoint a re-run resumes from. A sweep job returns the failure value.
    """
    finish_wandb(exit_code=1)
    user_error, fault = is_user_error(e), isinstance(e, RunFault)
    msg = (
        str(e).splitlines()[0]
        if (user_error or fault) and str(e)
        else f"{type(e).__name__}: {e}".splitlines()[0]
    )
    line = f"error: {msg}"
    # a config rejected before anything was built leaves no run dir behind; DDP: rank 0 writes it
    rank = _global_rank() if validated or multirun else 0
    if (validated or multirun) and rank == 0:
        try:
            from gfpo_bench.summary import RunSummary

            run_dir.mkdir(parents=True, exist_ok=True)
            if completed_summary(run_dir) is None:  # never overwrite a finished run's results
                summary = RunSummary.from_config(
                    cfg, status="failed", error=msg, wall_time_s=time.time() - t0
                )
                summary.write(run_dir)
        except Exception as write_error:  # noqa: BLE001  (e.g. the disk that failed the run is still full)
            why = str(write_error).splitlines()[0] if str(write_error) else type(write_error).__name__
            line += f" (summary.json not written: {why})"
    if not user_error:
        tb_file = run_dir / ("error.log" if rank == 0 else f"error.rank{rank}.log")
        try:
            tb_file.write_text("".join(traceback.format_exception(e)))
            where = f"traceback: {tb_file}"
        except OSError:
            where = "traceback not written: the run dir is not writable; run with debug=true to see it"
        last = run_dir / "checkpoints" / "last.ckpt"
        kept = (
            ""
            if fault or not last.exists()
            else f"; last checkpoint kept: {last} (run the same command to resume)"
        )
        line += f" ({where}{kept})"
    if debug_wanted(cfg):
        traceback.print_exception(e)
    if multirun:
        log.error("job %s failed: %s (the sweep goes on)", run_dir.name, msg)
        return _failure_value()
    print(line, file=sys.stderr)
    sys.exit(2 if user_error else 1)


if __name__ == "__main__":
    main()
