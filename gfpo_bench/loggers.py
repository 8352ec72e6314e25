"""Loggers for a run: Lightning's WandbLogger (offline when no credentials exist) and a CSVLogger.

W&B online but unreachable (no network, a firewall, an outage): `wandb.init` fails, and the run
falls back to an offline W&B run with a warning instead of dying; `wandb sync <run dir>/wandb/...`
uploads it later. Lightning is imported only when loggers are built, so the CLI starts fast.
"""

from __future__ import annotations

import json
import logging
import netrc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from gfpo_bench.config_schema import require

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger

    from gfpo_bench.summary import RunSummary

log = logging.getLogger(__name__)


def wandb_credentials_present() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: str) -> str:
    """auto -> online with credentials, else offline. WANDB_MODE in the environment wins."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    require("logger.wandb.mode", mode)  # its choices: config_schema.py
    if mode == "auto":
        return "online" if wandb_credentials_present() else "offline"
    return mode


def build_loggers(cfg: DictConfig, run_dir: Path) -> list[Logger]:
    """W&B (named `<method>-<run dir>`, grouped by sweep in a multirun) and CSV, as `cfg.logger` asks."""
    from hydra.core.hydra_config import HydraConfig

    from gfpo_bench.csv_log import ResumableCSVLogger

    hc = HydraConfig.get() if HydraConfig.initialized() else None
    group = Path(hc.sweep.dir).name if hc is not None and getattr(hc.mode, "name", "") == "MULTIRUN" else None
    name = f"{cfg.method}-{run_dir.name}"

    loggers: list[Logger] = []
    wb = cfg.logger.get("wandb")
    if wb is not None:
        mode = resolve_wandb_mode(wb.mode)
        if mode != "disabled":
            log.info("W&B logging %s (project %s, run %s)", mode, wb.project, name)
            kwargs = dict(
                project=wb.project,
                entity=wb.get("entity"),
                name=name,
                group=wb.get("group") or group,
                save_dir=str(run_dir),
                config=OmegaConf.to_container(cfg, resolve=True),
            )
            loggers.append(wandb_logger(kwargs, offline=mode == "offline"))
    if cfg.logger.get("csv", True):
        loggers.append(ResumableCSVLogger(save_dir=str(run_dir), name="csv", version=""))  # csv_log.py
    return loggers


def wandb_logger(kwargs: dict, offline: bool) -> Logger:
    """A WandbLogger; online, its run is started now, and if W&B cannot be reached the run goes on
    with an offline W&B run (and a warning) rather than failing at its first logged metric."""
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(offline=offline, **kwargs)
    if offline:
        return logger
    try:
        logger.experiment  # noqa: B018  (wandb.init: contacts the server)
        return logger
    except Exception as e:  # noqa: BLE001  (CommError, timeouts, auth: all mean "not reachable")
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        log.warning(
            "W&B is unreachable (%s): logging to an offline W&B run instead; upload it later "
            "with `wandb sync`",
            reason,
        )
        finish_wandb(exit_code=1)
        # mode="offline" in wandb.init itself: the WANDB_MODE that offline=True sets is ignored once
        # a W&B session has started (the failed online attempt started one)
        return WandbLogger(offline=True, mode="offline", **kwargs)


def publish_summary(loggers: list[Logger], summary: RunSummary) -> None:
    """Copy summary.json's results into the W&B run summary (`RunSummary.flat`: final metrics, pair
    statistics, cost, budget), so `gfpo-bench-compare --wandb-project` reads the same numbers as
    from the run dirs."""
    flat = summary.flat()
    from lightning.pytorch.loggers import WandbLogger

    for lg in loggers:
        if isinstance(lg, WandbLogger):
            lg.experiment.summary.update(flat)


def report_run(summary: RunSummary, run_dir: Path, loggers: list[Logger]) -> dict:
    """The end of a finished run: summary.json, W&B's run summary, and the lines a user sees last."""
    path = summary.write(run_dir)
    publish_summary(loggers, summary)
    finish_wandb()  # the next run in this process (a sweep job, a test) must not log into this one
    print(summary.outcome(run_dir, path))
    return json.loads(path.read_text())


def finish_wandb(exit_code: int = 0) -> None:
    """Close this process's open W&B run, if any (exit_code != 0 marks it failed)."""
    wandb = sys.modules.get("wandb")  # never import wandb just to find there is nothing to close
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=exit_code)
