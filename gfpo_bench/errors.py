"""Errors reported as one line (`error: ...`), never a deep traceback.

- `ConfigError`: the user's input is wrong (a value out of range, a missing file, no GPU for
  trainer=gpu). Exit code 2; `gfpo_bench/validation.py` raises most of them before anything is built.
- `RunFault`: the run hit a fault of its environment it cannot go on from (a full disk at checkpoint
  time). Exit code 1; the last good checkpoint is kept, so re-running the same command resumes.
- `Preempted`: the run received SIGTERM (SLURM preemption) and saved checkpoints/last.ckpt first.
  Exit code 143 (128 + SIGTERM); re-running the same command resumes exactly.
- `ModelLoadError` (models/loading.py) and `PromptTooLongError` (sampling/base.py): a model that
  cannot be loaded, a prompt longer than the model's context. Defined here, the bottom layer, so that
  the CLIs can report them without importing the modules that raise them.

Both CLIs (`gfpo-bench`, `gfpo-bench-eval`) decide with `is_user_error` whether a failure is one
line or a traceback, and `debug_wanted` says when the traceback is shown anyway. This module is the
bottom layer: it imports nothing from gfpo_bench.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


class ConfigError(ValueError):
    """A config value is unknown or out of range, or a file it names is missing or unreadable."""


class RunFault(RuntimeError):
    """The environment failed the run (disk full, ...); the message says what to do."""


class CheckpointWriteError(RunFault):
    """A checkpoint could not be written; the previous one is intact."""


class ModelLoadError(RuntimeError):
    """A model or tokenizer could not be loaded (path missing, bad dtype, checkpoint unreadable)."""


class PromptTooLongError(ValueError):
    """A prompt plus `sampler.max_new_tokens` does not fit the model's context."""


class Preempted(Exception):
    """The run received SIGTERM and stopped after saving `checkpoint` at optimizer step `step`."""

    def __init__(self, checkpoint: Path, step: int) -> None:
        super().__init__(
            f"preempted: SIGTERM received; stopped at step {step} and saved {checkpoint} "
            "(run the same command to resume)"
        )
        self.checkpoint, self.step = checkpoint, step


def is_user_error(e: BaseException) -> bool:
    """Our own checks of the user's input, not a ValueError deep inside a library (that is a bug,
    shown with its traceback)."""
    if isinstance(e, (ConfigError, ModelLoadError, PromptTooLongError)):
        return True
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    own = tb is not None and "gfpo_bench" in tb.tb_frame.f_code.co_filename
    return isinstance(e, (FileNotFoundError, ValueError)) and own


def debug_wanted(cfg: Mapping) -> bool:
    """Show tracebacks: GFPO_BENCH_DEBUG=1, HYDRA_FULL_ERROR=1 or debug=true."""
    return (
        bool(os.environ.get("GFPO_BENCH_DEBUG"))
        or os.environ.get("HYDRA_FULL_ERROR") == "1"
        or (cfg.get("debug") is True)
    )
