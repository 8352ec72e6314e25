"""SIGTERM (what SLURM sends at preemption, and `kill <pid>`): save last.ckpt, then stop.

Lightning (>= 2.x) installs a SIGTERM handler in every run that only sets `trainer.received_sigterm`;
after the current training batch it raises `SIGTERMException`. This callback saves
`checkpoints/last.ckpt` at the end of that batch, at the same point of the loop as ModelCheckpoint's
periodic saves, so the checkpoint resumes exactly like any other; `train.run` then turns the
exception into `errors.Preempted`, which the CLI reports as one line and exit code 143 (128 + SIGTERM).
Departs from Lightning's SLURM auto-requeue (SLURMEnvironment), which saves `hpc_ckpt_*.ckpt` and
calls `scontrol requeue` itself only under SLURM on SIGUSR1; here requeueing is the submitit
launcher's job (conf/hydra/launcher/slurm.yaml), and the checkpoint is the one `resume=auto` reads.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

log = logging.getLogger(__name__)


class SaveOnSigterm(L.Callback):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.saved_step: int | None = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if getattr(trainer, "received_sigterm", False) and self.saved_step is None:
            trainer.save_checkpoint(self.path)  # atomic (checkpoint_io.py)
            self.saved_step = trainer.global_step
            log.warning("SIGTERM: saved %s at step %d; stopping", self.path, trainer.global_step)
