"""The step ledger: one object owns a run's per-step bookkeeping, on one process and under DDP alike.

During a step the module writes to it: generated tokens (`count_tokens`), logged metrics with
their weight (`record`), and a skipped or non-finite step (`skip`). At the end of the step `close`
reduces what every rank wrote and returns the one dict of metrics to log. On one process the
"reduction" is over one rank, so the same code path runs everywhere and a new metric is added in
one place. Under DDP `close` takes the trainer's all-gather: tokens and skips are summed, metrics
reduced as distributed.reduce_metrics says (counts summed, rates averaged with weights).

The run's counters (tokens_generated, skipped_batches, nonfinite_steps) are the ledger's
`state_dict`, which the module puts in every checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable

from gfpo_bench.distributed import reduce_metrics

Gather = Callable[[dict], list[dict]]  # this rank's entry -> every rank's entries, in rank order


class StepLedger:
    def __init__(self) -> None:
        self.tokens_generated = 0  # all ranks', up to the last closed step
        self.skipped_batches = 0
        self.nonfinite_steps = 0
        self.rank_tokens_generated = 0  # this rank's own (the DDP report; not checkpointed)
        self._open()

    def _open(self) -> None:
        self._tokens = 0
        self._entries: list[tuple[dict[str, float], float]] = []  # (metrics, weight)
        self._skips = {"skipped": 0, "nonfinite": 0}

    # --- during a step --------------------------------------------------------------------------
    def count_tokens(self, n: int) -> None:
        self._tokens += n
        self.rank_tokens_generated += n

    def record(self, metrics: dict, weight: float = 1.0) -> None:
        """Metrics of this step; under DDP averaged over ranks with `weight` (counts are summed)."""
        self._entries.append(({k: float(v) for k, v in metrics.items()}, float(weight)))

    def skip(self, kind: str) -> None:
        """'skipped' (nothing to learn from) or 'nonfinite' (the loss was not finite)."""
        self._skips[kind] += 1

    @property
    def step_tokens(self) -> int:
        """Tokens this rank generated in the open step."""
        return self._tokens

    # --- end of the step ------------------------------------------------------------------------
    def close(self, gather: Gather | None = None) -> dict[str, float]:
        """Reduce the step over the ranks (`gather`; None: this process alone) and return what to log."""
        mine = {"tokens": self._tokens, "entries": self._entries, "skips": self._skips}
        ranks = gather(mine) if gather is not None else [mine]
        self._open()
        self.tokens_generated += sum(r["tokens"] for r in ranks)
        skipped = sum(r["skips"]["skipped"] for r in ranks)
        nonfinite = sum(r["skips"]["nonfinite"] for r in ranks)
        self.skipped_batches += skipped
        self.nonfinite_steps += nonfinite
        metrics = reduce_metrics([entry for r in ranks for entry in r["entries"]])
        metrics["train/tokens_generated"] = float(self.tokens_generated)
        if skipped:
            metrics["train/skipped_batches"] = float(self.skipped_batches)
        if nonfinite:
            metrics["train/nonfinite_steps"] = float(self.nonfinite_steps)
        return metrics

    # --- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "tokens_generated": self.tokens_generated,
            "skipped_batches": self.skipped_batches,
            "nonfinite_steps": self.nonfinite_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.tokens_generated = state.get("tokens_generated", 0)
        self.skipped_batches = state.get("skipped_batches", 0)
        self.nonfinite_steps = state.get("nonfinite_steps", 0)
