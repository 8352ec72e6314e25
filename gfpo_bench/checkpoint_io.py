"""Atomic checkpoint writes: a checkpoint file is either the old one or the new one, never half.

`AtomicCheckpointIO` is a Lightning `CheckpointIO` (every `trainer.save_checkpoint`, including
ModelCheckpoint's last.ckpt, goes through it): it writes `<name>.tmp-<pid>` in the same directory,
flushes it to disk, then `os.replace`s it over the target, which POSIX makes atomic. A failed write
(disk full, quota, I/O error) or a kill mid-write leaves the previous checkpoint as it was; a failed
write removes its temp file and raises `CheckpointWriteError`, which the CLI reports as one line.
Departs from Lightning's own `TorchCheckpointIO`, which serialises to memory and then writes over the
target through fsspec, without fsync.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from gfpo_bench.errors import CheckpointWriteError


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        try:
            with tmp.open("wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            kept = f"the previous {target.name} is intact" if target.exists() else "no earlier checkpoint"
            hint = (
                "free some disk space" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "fix the file system"
            )
            raise CheckpointWriteError(
                f"could not write checkpoint {target}: {e.strerror or e} ({kept}); "
                f"{hint} and run the same command again to resume"
            ) from e
