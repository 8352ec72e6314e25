"""A CSV logger whose metrics.csv survives a resume: rows up to the checkpoint are kept.

Lightning's CSVLogger deletes an existing metrics.csv when it starts and writes its rows every 100
steps, so a run killed and resumed in the same dir ends with the rows logged after the resume only
(and `gfpo-bench-compare` draws its learning curves from that file). `ResumableCSVLogger` writes each
row as it is logged and keeps the file it finds; `CSVResume`, a callback, cuts the file back to what
the checkpoint covers when a run resumes, so the rows logged after the checkpoint and before the
kill are not there twice. Which rows those are follows from when Lightning logs them: evaluation
rows of step N are logged before the step-N checkpoint is saved, the train row of the batch that
made step N right after it (CSV step N - 1, Lightning's `_batches_that_stepped`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable

import lightning as L
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class _KeepingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:  # Lightning's deletes metrics.csv here
        return None

    def keep_rows(self, keep: Callable[[dict], bool] | None) -> None:
        """Rewrite metrics.csv with the rows `keep(row)` accepts; later rows append to it."""
        if not self._fs.isfile(self.metrics_file_path):
            return
        if keep is None:  # a fresh run: a fresh file
            self._fs.rm_file(self.metrics_file_path)
            self.metrics_keys = []
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as f:
            reader = csv.DictReader(f)
            header, rows = list(reader.fieldnames or []), [r for r in reader if keep(r)]
        with self._fs.open(self.metrics_file_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = sorted(header)


class ResumableCSVLogger(CSVLogger):
    def __init__(self, save_dir: str, name: str = "csv", version: str = "") -> None:
        super().__init__(save_dir=save_dir, name=name, version=version, flush_logs_every_n_steps=1)

    @property
    @rank_zero_experiment  # as Lightning's: under DDP only global rank 0 touches metrics.csv
    def experiment(self) -> _KeepingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingWriter(log_dir=self.log_dir)
        return self._experiment


class CSVResume(L.Callback):
    """On resume from a checkpoint at step N: keep eval rows up to N and train rows up to N - 1.
    A run that starts from scratch starts a new metrics.csv, as Lightning's CSVLogger does."""

    def __init__(self) -> None:
        self.resumed = False

    def on_fit_start(self, trainer, module) -> None:  # after on_load_checkpoint, before any row
        if not self.resumed:
            for lg in trainer.loggers:
                if isinstance(lg, ResumableCSVLogger):
                    lg.experiment.keep_rows(None)

    def on_load_checkpoint(self, trainer, module, checkpoint: dict) -> None:
        self.resumed = True
        step = int(checkpoint["global_step"])

        def covered(row: dict) -> bool:
            is_eval = any(v != "" for k, v in row.items() if k.startswith("val/"))
            return int(float(row["step"])) <= (step if is_eval else step - 1)

        for lg in trainer.loggers:
            if isinstance(lg, ResumableCSVLogger):
                lg.experiment.keep_rows(covered)
