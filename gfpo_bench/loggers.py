"""Loggers for a run: Lightning's WandbLogger (offline when no credentials exist) and a CSVLogger."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

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
    if mode == "auto":
        return "online" if wandb_credentials_present() else "offline"
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"logger.wandb.mode must be auto, online, offline or disabled; got {mode!r}")
    return mode


def build_loggers(cfg: DictConfig, run_dir: Path, name: str, group: str | None) -> list[Logger]:
    loggers: list[Logger] = []
    wb = cfg.logger.get("wandb")
    if wb is not None:
        mode = resolve_wandb_mode(wb.mode)
        if mode != "disabled":
            log.info("W&B logging %s (project %s, run %s)", mode, wb.project, name)
            logger = WandbLogger(
                project=wb.project,
                entity=wb.get("entity"),
                name=name,
                group=wb.get("group") or group,
                save_dir=str(run_dir),
                offline=mode == "offline",
                config=OmegaConf.to_container(cfg, resolve=True),
            )
            loggers.append(logger)
    if cfg.logger.get("csv", True):
        loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=""))
    return loggers
