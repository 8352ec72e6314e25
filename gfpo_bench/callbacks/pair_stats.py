"""Pair statistics recorder: each step's `train/` metrics, for the run's `pair_stats` in summary.json.

After every training batch it keeps a copy of the step's `train/` metrics (pairs per step, pairable
group rate, reward gap, prefix fraction, ...); `summary_fields()` gives their means over the run
(`summary.summarise_pairs`). The history is its `state_dict`, kept in every checkpoint, so a
resumed run reports the means over all of its steps.
"""

from __future__ import annotations

import lightning as L

from gfpo_bench.summary import summarise_pairs


class PairStatsRecorder(L.Callback):
    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []  # one entry per training batch: train/ metric -> value

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        # callback_metrics keep a metric's last value until it is logged again (e.g. train/loss on a
        # skipped batch); a resumed trainer starts empty, so carry the last entry's values forward
        # (a no-op in an uninterrupted run, where they are all still in callback_metrics)
        last = self.history[-1] if self.history else {}
        m = trainer.callback_metrics
        self.history.append({**last, **{k: float(v) for k, v in m.items() if k.startswith("train/")}})

    def summary_fields(self) -> dict:
        """This callback's part of summary.json (see `gfpo_bench.callbacks.summary_fields`)."""
        return {"pair_stats": summarise_pairs(self.history)}

    def state_dict(self) -> dict:  # in every checkpoint (Lightning saves callbacks' state)
        return {"history": [dict(h) for h in self.history]}

    def load_state_dict(self, state: dict) -> None:
        self.history = [dict(h) for h in state["history"]]

    def on_load_checkpoint(self, trainer, module, checkpoint: dict) -> None:
        # Older checkpoints kept this history on the module (gfpo_state["pair_history"]); Lightning calls
        # this before load_state_dict, which replaces it when the checkpoint has this callback's state.
        self.history = [dict(h) for h in checkpoint.get("gfpo_state", {}).get("pair_history", [])]
