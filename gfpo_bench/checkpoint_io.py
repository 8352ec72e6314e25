"""Atomic checkpoint writes: a checkpoint file is either the old one or the new one, never half.

`AtomicCheckpointIO` is a Lightning `CheckpointIO` (every `trainer.save_checkpoint`, including
ModelCheckpoint's last.ckpt, goes through it): it writes `<name>.tmp-<pid>` in the same directory,
flushes it to disk, then `os.replace`s it over the target, which POSIX makes atomic. A failed write
(disk full, quota, I/O error) or a kill mid-write leaves the previous checkpoint as it was; a failed
write removes its temp file and raises `CheckpointWriteError`, which the CLI reports as one line.
(torch.save reports a failed write as a RuntimeError; the OSError behind it names the cause.)
Departs from Lightning's own `TorchCheckpointIO`, which serialises to memory and then writes over the
target through fsspec, without fsync.
"""

from __future__ import annotations

import errno
import os
import shutil
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
        except BaseException as e:
            tmp.unlink(missing_ok=True)
            if not isinstance(e, (OSError, RuntimeError)):  # e.g. KeyboardInterrupt: as it was
                raise
            raise CheckpointWriteError(_message(target, e)) from e


def _message(target: Path, e: BaseException) -> str:
    """torch.save turns a failed write into RuntimeError('[enforce fail ...] unexpected pos ...');
    the OSError behind it (ENOSPC, EDQUOT, EIO) says what happened."""
    cause: BaseException | None = e
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(e).splitlines()[0][:100]
    try:
        free = f", {shutil.disk_usage(target.parent).free / 2**20:.1f} MiB free there"
    except OSError:
        free = ""
    kept = f"the previous {target.name} is intact" if target.exists() else "no earlier checkpoint"
    full = isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)
    hint = "free some disk space" if full or not isinstance(cause, OSError) else "fix the file system"
    return (
        f"could not write checkpoint {target}: {reason}{free} ({kept}); "
        f"{hint} and run the same command again to resume"
    )
