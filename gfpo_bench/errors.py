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
"""

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
