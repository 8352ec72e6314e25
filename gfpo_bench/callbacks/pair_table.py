"""Pair table callback: sample pairs of every strategy, readable side by side in W&B.

Every `every_n_steps` optimizer steps it logs the module's `last_pairs` (the batch just trained on)
as a W&B table under the step-unique key `pairs/step_<N>`, so tables are never overwritten: prompt,
better and worse path with the divergence point marked `⟦`, the divergent step, the reward
components and verifier step scores of each path, and the margin A(x+) - A(x-) from the loss (NaN
when the batch was skipped). It also logs W&B histograms of the batch's reward gaps, shared-prefix
lengths and divergence steps (`pairs/hist/...`). Scalar summaries of the same distributions go to
every logger from `analytics.pair_metrics`; this callback does nothing without a WandbLogger.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from gfpo_bench.checkers.steps import first_wrong_step
from gfpo_bench.types import Pairs, RewardOutput, Rollouts

MARK = "⟦"
SIDES = ("better", "worse")
COLUMNS = [
    "group",
    "prompt",
    "better",
    "worse",
    "diverge_step",
    "prefix_tokens",
    "worse_first_wrong_step",
    *(f"{s}_{c}" for s in SIDES for c in ("final", "process", "format", "total", "step_scores")),
    "margin",
]


def marked(tokenizer, rollouts: Rollouts, i: int, d: int) -> str:
    """Completion text of path i with MARK inserted where its token at absolute position d starts.

    The offset is the length of the decoded completion tokens before d (eos dropped, as in `texts`).
    """
    p = int(rollouts.prompt_len[i])
    head = [t for t in rollouts.tokens[i, p : max(p, d)].tolist() if t != tokenizer.eos_token_id]
    c = len(tokenizer.decode(head, skip_special_tokens=False))
    text = rollouts.texts[i]
    return text[:c] + MARK + text[c:]


def spread(groups: list[int], rows: int) -> list[int]:
    """Indices of up to `rows` pairs, round-robin over groups (first pair of each group first).

    >>> spread([0, 0, 0, 1, 2, 2], 4)
    [0, 3, 4, 1]
    """
    seen: dict[int, int] = {}
    keyed = []
    for k, g in enumerate(groups):
        keyed.append((seen.get(g, 0), k))
        seen[g] = seen.get(g, 0) + 1
    return [k for _, k in sorted(keyed)[:rows]]


def pair_rows(
    tokenizer, rollouts: Rollouts, rewards: RewardOutput, pairs: Pairs, margin, rows: int
) -> list[list]:
    """Table rows (COLUMNS) for up to `rows` pairs; margin [M] or None."""
    out = []
    groups = rollouts.group[pairs.better].tolist()  # [M]
    for k in spread(groups, rows):
        b, w, d = int(pairs.better[k]), int(pairs.worse[k]), int(pairs.diverge[k])
        row = [
            groups[k],
            rollouts.problems[groups[k]].question,
            marked(tokenizer, rollouts, b, d),
            marked(tokenizer, rollouts, w, d),
            int(pairs.diverge_step[k]),
            max(0, d - int(rollouts.prompt_len[b])),
            first_wrong_step(rewards.step_scores[w]),
        ]
        for i in (b, w):
            row += [
                float(rewards.final[i]),
                float(rewards.process[i]),
                float(rewards.format[i]),
                float(rewards.total[i]),
                str(rewards.step_scores[i]),
            ]
        row.append(float(margin[k]) if margin is not None and margin.numel() == pairs.m else float("nan"))
        out.append(row)
    return out


def histograms(rollouts: Rollouts, rewards: RewardOutput, pairs: Pairs) -> dict:
    import wandb  # only with a WandbLogger attached

    gap = rewards.total[pairs.better] - rewards.total[pairs.worse]  # [M]
    prefix = (pairs.diverge - rollouts.prompt_len[pairs.better]).clamp_min(0)  # [M]
    return {
        "pairs/hist/reward_gap": wandb.Histogram(gap.tolist()),
        "pairs/hist/prefix_tokens": wandb.Histogram(prefix.tolist()),
        "pairs/hist/diverge_step": wandb.Histogram(pairs.diverge_step.tolist()),
    }


class PairTableCallback(L.Callback):
    def __init__(self, every_n_steps: int = 50, rows: int = 8) -> None:
        self.every, self.rows = every_n_steps, rows
        self.last_step = -1

    def state_dict(self) -> dict:
        return {"last_step": self.last_step}

    def load_state_dict(self, state: dict) -> None:
        self.last_step = state["last_step"]

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if not self.every or not self.rows or step % self.every or step == self.last_step:
            return
        wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not wandb_loggers or getattr(module, "last_pairs", None) is None:
            return
        rollouts, rewards, pairs, loss_out = module.last_pairs
        if pairs.m == 0:
            return
        data = pair_rows(
            module.tok, rollouts, rewards, pairs, None if loss_out is None else loss_out.margin, self.rows
        )
        hist = histograms(rollouts, rewards, pairs)
        for lg in wandb_loggers:
            lg.log_table(key=f"pairs/step_{step}", columns=COLUMNS, data=data, step=step)
            lg.log_metrics(hist, step=step)
        self.last_step = step
