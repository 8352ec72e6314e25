"""How DDP ranks agree, and the global RNG state a run carries across a resume.

Pure functions the LightningModule calls (module.py): the per-step reduction of logged metrics over
ranks (counts summed, rates averaged with weights), a hash of the weights to show ranks end identical,
per-rank seeding of the global RNGs, and capture/restore of the torch, python and numpy RNG states
(saved in every checkpoint so a resumed run draws what the uninterrupted one drew).
"""

from __future__ import annotations

import hashlib
import random

import torch
from torch import Tensor

# pair statistics (pair_metrics): averaged over ranks weighted by each rank's pairs
PAIR_WEIGHTED = {
    "train/reward_gap",
    "train/prefix_frac",
    "train/prefix_tokens",
    "train/diverge_step",
    "train/diverge_is_first_wrong",
    "train/pairs_same_root",
}
PAIR_PREFIXES = ("train/reward_gap_p", "train/prefix_tokens_p", "train/diverge_at/")
SUMMED = {"train/pairs", "train/pairable_groups", "train/dynamic_groups_kept", "train/reward/faults"}


def reduce_metrics(entries: list[tuple[dict[str, float], float]]) -> dict[str, float]:
    """All ranks' (metrics, weight) of one step -> one value per key: counts (SUMMED) summed, the
    rest averaged over the ranks that logged them, weighted (an all-zero weight: plain mean).

    >>> reduce_metrics([({"train/pairs": 2.0, "train/x": 1.0}, 1.0), ({"train/pairs": 3.0, "train/x": 0.0}, 3.0)])
    {'train/pairs': 5.0, 'train/x': 0.25}
    """
    sums: dict[str, list[float]] = {}
    for metrics, weight in entries:
        for k, v in metrics.items():
            s = sums.setdefault(k, [0.0, 0.0, 0.0, 0.0])  # weighted sum, weight, plain sum, count
            s[0] += weight * v
            s[1] += weight
            s[2] += v
            s[3] += 1
    out = {}
    for k, (ws, w, total, n) in sums.items():
        # one entry (one process, or one rank logged it): its value as it is, not w*v/w rounded
        out[k] = total if k in SUMMED or n == 1 else (ws / w if w > 0 else total / n)
    return out


def weights_sha256(state_dict: dict[str, Tensor]) -> str:
    """A hash of a model's weights (names and bytes), to check that DDP ranks end identical."""
    h = hashlib.sha256()
    for name, p in sorted(state_dict.items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def seed_rank(seed: int, rank: int) -> None:
    """DDP: the global RNGs of rank > 0 (torch, python, numpy), seeded from (seed, rank), so ranks do
    not repeat rank 0's random draws. The boxes' own generators (branch sampler, reward noise) are
    seeded by `seed` alone and still draw alike on every rank (see the DDP notes)."""
    import numpy as np

    s = (seed * 1_000_003 + rank) % 2**32
    torch.manual_seed(s)
    random.seed(s)
    np.random.seed(s)


def global_rng_state() -> dict:
    """torch (CPU and CUDA), python `random` and numpy global RNG states."""
    import numpy as np

    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [v.tolist() if isinstance(v, np.ndarray) else v for v in np.random.get_state()],
    }  # plain types only: Lightning resumes with torch.load(weights_only=True)


def set_global_rng_state(state: dict) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
