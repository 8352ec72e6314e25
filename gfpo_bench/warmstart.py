"""Warm starts and resumes.

- `init_from=<run dir | .ckpt | HF model dir>` loads model weights from another run (its
  final_model/, else its checkpoints/last.ckpt) before training; so a schedule can also be two
  chained runs (e.g. srpo, then gfpo from its result). With `init_optimizer=true` the optimizer's
  moments come along from the run's checkpoints/last.ckpt (saved at the end of every run, so it
  matches final_model/); its hyperparameters (lr, ...) stay this run's.
- `resume=auto` continues an interrupted run in the same run dir from checkpoints/last.ckpt.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from gfpo_bench.errors import ConfigError

log = logging.getLogger(__name__)


def _resolve(path: Path) -> Path:
    if path.is_dir() and (path / "config.json").exists():
        return path
    if path.is_dir():
        for cand in (path / "final_model", path / "checkpoints" / "last.ckpt"):
            if cand.exists():
                return cand
        raise ConfigError(f"init_from={path}: no final_model/ or checkpoints/last.ckpt inside")
    if path.suffix == ".ckpt" and path.exists():
        return path
    raise ConfigError(f"init_from={path}: not found (give a run dir, a .ckpt file or a saved model dir)")


def load_init_weights(model: torch.nn.Module, init_from: str) -> Path:
    """Copy weights into `model` in place; the architecture must match exactly."""
    src = _resolve(Path(init_from).expanduser())
    if src.suffix == ".ckpt":
        state = torch.load(src, map_location="cpu", weights_only=False)["state_dict"]
        state = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    else:
        state = AutoModelForCausalLM.from_pretrained(src, dtype=next(model.parameters()).dtype).state_dict()
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to the embeddings
    if missing or unexpected:
        raise ConfigError(
            f"init_from={init_from}: weights do not fit this model "
            f"({len(missing)} missing, {len(unexpected)} unexpected keys, e.g. {(missing + unexpected)[:3]})"
        )
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    log.info("warm start: loaded weights from %s", src)
    return src


def init_optimizer_state(init_from: str) -> dict:
    """The optimizer state in another run's Lightning checkpoint: a .ckpt, or a run dir's last.ckpt."""
    path = Path(init_from).expanduser()
    ckpt = path if path.suffix == ".ckpt" else path / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise ConfigError(f"init_optimizer=true needs a Lightning checkpoint, and {ckpt} does not exist")
    states = torch.load(ckpt, map_location="cpu", weights_only=False).get("optimizer_states") or []
    if not states:
        raise ConfigError(f"init_optimizer=true: {ckpt} holds no optimizer state")
    return states[0]


def completed_summary(run_dir: Path) -> dict | None:
    """The run dir's summary.json if it records a completed run, else None."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("status") == "completed" else None


def resume_checkpoint(run_dir: Path, mode: str) -> str | None:
    """The checkpoint to resume from, or None to start fresh."""
    if mode not in ("auto", "never"):
        raise ConfigError(f"resume must be 'auto' or 'never', got {mode!r}")
    last = run_dir / "checkpoints" / "last.ckpt"
    if mode == "never" or not last.exists():
        return None
    if completed_summary(run_dir) is not None:
        raise ConfigError(
            f"{run_dir} already holds a completed run; change an override (e.g. seed) for a new run, "
            "or pass resume=never to train it again from scratch"
        )
    log.info("resuming interrupted run from %s", last)
    return str(last)
