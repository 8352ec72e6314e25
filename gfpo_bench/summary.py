"""`RunSummary`: the one definition of summary.json, the record every run leaves in its run dir.

Training (`train.py`, stage rl and sft), a failed run (`cli.py`), W&B's run summary (`loggers.py`),
`gfpo-bench-compare` (`compare/collect.py`) and the resume check (`warmstart.completed_summary`) all
write or read it through this class. The JSON keys come in the order of the fields below. Fields
marked optional are left out of the JSON when they are None (a failed run has no eval history, an
SFT run no skipped batches); every other field is always written, null when unknown. Reading is
tolerant: a file from an older version that lacks a key gets the field's default.

Pure: no torch, no Lightning (the bottom layer; omegaconf and hydra are imported only where a
composed config is turned into a summary).

>>> s = RunSummary(method="srpo", seed=0, status="completed", metrics={"val/math/accuracy": 0.75})
>>> RunSummary.from_dict(s.to_dict()) == s
True
>>> list(s.to_dict())[:8]
['method', 'seed', 'task', 'stage', 'overrides', 'budget', 'status', 'error']
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

FILE_NAME = "summary.json"
COMPLETED = "completed"
FAILED = "failed"

# train/ metric logged every step -> its mean over the run in `pair_stats`, in this order
PAIR_STATS = {
    "train/pairs": "pairs_per_step",
    "train/pairable_group_rate": "pairable_group_rate",
    "train/groups_with_spread": "groups_with_spread",
    "train/groups_right_and_wrong": "groups_right_and_wrong",
    "train/reward/correct": "sampled_train_accuracy",
    "train/reward_gap": "reward_gap",
    "train/prefix_frac": "prefix_frac",
    "train/diverge_is_first_wrong": "diverge_is_first_wrong",
}
# the top-level fields copied into W&B's run summary (`flat`), beside the metrics and pair stats
FLAT_FIELDS = (
    "method",
    "seed",
    "task",
    "stage",
    "status",
    "budget",
    "tokens_generated",
    "wall_time_s",
    "steps",
    "overrides",
)
# evaluation's x position (generated tokens at that evaluation), logged under val/ but not a result
NOT_METRICS = ("val/tokens_generated",)


@dataclass
class Budget:
    """The limits of a run, what it spent, and which limit ended it (the equal-compute check)."""

    max_steps: int | None = None  # trainer.max_steps
    max_tokens: int | None = None  # budget.max_tokens
    tokens_used: int | None = None
    steps_used: int | None = None
    stopped_by: str | None = None  # completed runs: "max_tokens" or "max_steps"; else None

    @classmethod
    def of_run(
        cls, max_steps: int | None, max_tokens: int | None, tokens: int | None, steps: int | None, status: str
    ) -> Budget:
        b = cls(max_steps, max_tokens, tokens, steps)
        if status == COMPLETED:
            spent = max_tokens is not None and (tokens or 0) >= max_tokens
            b.stopped_by = "max_tokens" if spent else "max_steps"
        return b

    @classmethod
    def from_dict(cls, data: dict) -> Budget:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class RunSummary:
    """One run's summary.json. Field order = JSON key order."""

    method: str  # pairing strategy or schedule name (config `method`)
    seed: int | None = None
    task: str | None = None  # the task's name (e.g. "arith"); null when the run failed before it
    stage: str | None = None  # rl | sft
    overrides: list[str] = field(default_factory=list)  # the command line's Hydra overrides
    budget: Budget | None = None
    status: str = "unknown"  # completed | failed
    error: str | None = None  # a failed run's one-line error
    metrics: dict[str, float] = field(default_factory=dict)  # the last evaluation's val/ metrics
    pair_stats: dict[str, float] = field(default_factory=dict)  # PAIR_STATS names -> run means
    tokens_generated: int | None = None
    wall_time_s: float | None = None
    steps: int | None = None  # optimizer steps (SFT: SFT steps)
    # optional (RL runs): left out of the JSON when None
    skipped_batches: int | None = None
    nonfinite_steps: int | None = None
    reward_faults: int | None = None
    ddp: dict | None = None  # multi-process runs: tokens and weight hashes per rank
    warm_start: dict | None = None  # see `warm_start_metrics`
    eval_history: list[dict] | None = None  # every evaluation: {"step": N, "val/...": ...}
    schedule_switches: list[dict] | None = None
    final_model: str | None = None
    checkpoint: str | None = None
    # always written (last, it is long): the resolved config of the run
    config: dict = field(default_factory=dict)

    OPTIONAL = (
        "skipped_batches",
        "nonfinite_steps",
        "reward_faults",
        "ddp",
        "warm_start",
        "eval_history",
        "schedule_switches",
        "final_model",
        "checkpoint",
    )

    # --- building ---------------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        cfg,
        *,
        status: str,
        wall_time_s: float,
        task: str | None = None,
        error: str | None = None,
        metrics: dict | None = None,
        pair_stats: dict | None = None,
        tokens_generated: int = 0,
        steps: int = 0,
        eval_history: list[dict] | None = None,
        overrides: list[str] | None = None,
        **optional: Any,
    ) -> RunSummary:
        """The summary of a run of the composed config `cfg`. `budget` and `config` come from `cfg`;
        `overrides` default to the running Hydra job's; with an `eval_history`, `warm_start` is its
        step-0 evaluation (`warm_start_metrics`). `optional`: the OPTIONAL fields (e.g. `ddp=...`)."""
        from omegaconf import OmegaConf

        start_weights = optional.pop("warm_start_weights", None)  # the evaluation callback's hash
        unknown = set(optional) - set(cls.OPTIONAL)
        if unknown:
            raise TypeError(f"RunSummary.from_config: unknown fields {sorted(unknown)}")
        if eval_history is not None:
            optional.setdefault("warm_start", warm_start_metrics(cfg, eval_history))
        if start_weights is not None and optional.get("warm_start") is not None:
            optional["warm_start"] = {**optional["warm_start"], "weights_sha256": start_weights}
        return cls(
            method=cfg.method,
            seed=cfg.seed,
            task=task,
            stage=cfg.stage,
            overrides=job_overrides() if overrides is None else list(overrides),
            budget=Budget.of_run(
                cfg.trainer.get("max_steps"), cfg.budget.max_tokens, tokens_generated, steps, status
            ),
            status=status,
            error=error,
            metrics=dict(metrics or {}),
            pair_stats=dict(pair_stats or {}),
            tokens_generated=tokens_generated,
            wall_time_s=wall_time_s,
            steps=steps,
            eval_history=eval_history,
            config=OmegaConf.to_container(cfg, resolve=True),
            **optional,
        )

    # --- JSON -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in field order, OPTIONAL fields left out when None."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self.OPTIONAL:
                continue
            out[f.name] = asdict(value) if isinstance(value, Budget) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def write(self, run_dir: str | Path) -> Path:
        """Write `<run_dir>/summary.json`; returns its path."""
        path = Path(run_dir) / FILE_NAME
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: Any) -> RunSummary:
        """A summary from its JSON object; keys it lacks get defaults, unknown keys are ignored.
        Raises ValueError when the object breaks the contract (not an object, no `method`,
        `metrics` or `pair_stats` not objects)."""
        if not isinstance(data, dict):
            raise ValueError("top level is not a JSON object")
        method = data.get("method")
        if not isinstance(method, str) or not method:
            raise ValueError("missing or non-string 'method'")
        metrics, pair_stats = data.get("metrics") or {}, data.get("pair_stats") or {}
        if not isinstance(metrics, dict) or not isinstance(pair_stats, dict):
            raise ValueError("'metrics' and 'pair_stats' must be objects")
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        kwargs.update(metrics=metrics, pair_stats=pair_stats)
        kwargs["overrides"] = data.get("overrides") or []
        kwargs["config"] = data.get("config") or {}
        if "status" in kwargs:
            kwargs["status"] = str(kwargs["status"])
        budget = data.get("budget")
        kwargs["budget"] = Budget.from_dict(budget) if isinstance(budget, dict) else None
        return cls(**kwargs)

    @classmethod
    def read(cls, path: str | Path) -> RunSummary:
        """Read a summary.json (a file, or the run dir holding it). Raises OSError when it cannot be
        read and ValueError when it is not JSON or breaks the contract (see `from_dict`)."""
        path = Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        return cls.from_dict(json.loads(path.read_text()))

    # --- views ------------------------------------------------------------------------------------
    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    def flat(self) -> dict[str, Any]:
        """A flat dict for W&B's run summary: FLAT_FIELDS, the metrics, and `pair_stats/<name>`;
        `gfpo-bench-compare --wandb-project` reads the same numbers from it as from the run dirs."""
        full = self.to_dict()
        out = {k: full[k] for k in FLAT_FIELDS if k in full}
        out.update(self.metrics)
        out.update({f"pair_stats/{k}": v for k, v in self.pair_stats.items()})
        return out

    def outcome(self, run_dir: str | Path, path: str | Path) -> str:
        """What a finished run prints last: where its results are, and its final val/ metrics."""
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(self.metrics.items()) if k.startswith("val/"))
        return (
            f"\nrun dir:      {run_dir}\nfinal model:  {self.final_model}\nsummary:      {path}\n"
            f"metrics csv:  {Path(run_dir) / 'csv' / 'metrics.csv'}\nfinal:        {shown}"
        )


def job_overrides() -> list[str]:
    """The running Hydra job's command-line overrides ([] outside a Hydra job)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def summarise_pairs(history: list[dict]) -> dict[str, float]:
    """`pair_stats`: the mean over steps of each PAIR_STATS metric (NaN steps left out).

    >>> summarise_pairs([{"train/pairs": 2.0}, {"train/pairs": 4.0, "train/reward_gap": float("nan")}])
    {'pairs_per_step': 3.0}
    """
    out = {}
    for key, name in PAIR_STATS.items():
        vals = [h[key] for h in history if key in h and not math.isnan(h[key])]
        if vals:
            out[name] = sum(vals) / len(vals)
    return out


def warm_start_metrics(cfg, history: list[dict]) -> dict:
    """What the run started from: its step-0 evaluation (greedy and sampled accuracy) and, for the
    embedded model, the SFT steps of its warm start. A resumed run keeps its first evaluation."""
    out: dict = {
        "sft_steps": cfg.model.sft.steps
        if cfg.model.get("sft") and not cfg.model.get("name_or_path")
        else None
    }
    if cfg.init_from:
        out["init_from"] = str(cfg.init_from)
    first = history[0] if history and history[0].get("step") == 0 else {}
    out.update({k: v for k, v in first.items() if k.startswith("val/") and k not in NOT_METRICS})
    return out
