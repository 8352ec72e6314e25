"""Pair analytics: hand-checked values, the W&B pair table, and the keys in a real run's metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from gfpo_bench.analytics import pair_metrics
from gfpo_bench.callbacks.pair_table import COLUMNS, MARK, PairTableCallback, pair_rows
from gfpo_bench.loss import LossOutput
from gfpo_bench.models.prompting import PromptFormatter
from gfpo_bench.models.tokenizer import build_char_tokenizer
from gfpo_bench.pairing import annotate
from gfpo_bench.rewards.reward import Reward
from gfpo_bench.sampling.base import rollouts_from_texts
from gfpo_bench.tasks.arith import ArithTask
from gfpo_bench.train import run
from gfpo_bench.types import Problem

GOOD = "<think>\n1+2=3\n3+4=7\n</think>\n<answer>7</answer>"  # R = 1 + 0.5*1 + 0.2 = 1.7
WRONG_STEP = "<think>\n1+2=3\n3+4=8\n</think>\n<answer>8</answer>"  # steps [1, -1]: R = 0 + 0 + 0.2 = 0.2
WRONG_ANSWER = "<think>\n1+2=3\n3+4=7\n</think>\n<answer>9</answer>"  # steps [1, 1]: R = 0.5 + 0.2 = 0.7
TEXTS = [GOOD, WRONG_STEP, WRONG_ANSWER, "<answer>7</answer>", "<answer>8</answer>"]  # last two: R 1.0, 0.0


@pytest.fixture(scope="module")
def batch():
    tok, task = build_char_tokenizer(), ArithTask()
    p = Problem("hand/0", "1+2+4=?", "7", GOOD, meta={"nums": [1, 2, 4], "ops": ["+", "+"]})
    r = rollouts_from_texts(tok, PromptFormatter(), task, [p], [TEXTS])
    pairs = annotate(r, [(0, 1), (0, 2), (3, 4)])  # diverge at step 1, in the answer, no steps
    return tok, r, Reward()(task, r), pairs


def test_pair_metrics_by_hand(batch):
    _, r, rewards, pairs = batch
    m = pair_metrics(r, rewards, pairs)
    assert m["train/pairs"] == 3 and m["train/pairable_group_rate"] == 1.0
    # gaps 1.5, 1.0, 1.0 -> mean 1.1667; quantiles of [1, 1, 1.5]: p10 1.0, p50 1.0, p90 1 + 0.8*0.5 = 1.4
    assert [m[f"train/reward_gap{s}"] for s in ("", "_p10", "_p50", "_p90")] == pytest.approx(
        [7 / 6, 1.0, 1.0, 1.4], abs=1e-5
    )
    # shared completion tokens 12, 17, 1 -> sorted [1, 12, 17]: p10 1 + 0.2*11 = 3.2, p50 12, p90 12 + 0.8*5 = 16
    assert [m[f"train/prefix_tokens{s}"] for s in ("", "_p10", "_p50", "_p90")] == pytest.approx(
        [10, 3.2, 12, 16]
    )
    # divergence steps 1 (of 2), 2 (= after both steps: the answer), -1 (no steps): a third each
    bins = {k.rsplit("/", 1)[1]: v for k, v in m.items() if "/diverge_at/" in k}
    assert bins == pytest.approx(
        {"step0": 0, "step1": 1 / 3, "step2": 0, "step3plus": 0, "answer": 1 / 3, "nosteps": 1 / 3}
    )
    # only WRONG_STEP has a wrong step (step 1), and the pair diverges exactly there: 1/1
    assert m["train/diverge_is_first_wrong"] == 1.0
    assert m["train/pairs_same_root"] == 0.0  # no branch bookkeeping: no shared root


def test_pairs_same_root_follows_parents(batch):
    _, r, rewards, pairs = batch
    r2 = r.select(list(range(r.n)))
    r2.parent = torch.tensor([-1, 0, -1, -1, 3])  # 1 branched from 0, 4 from 3; 2 is its own root
    assert pair_metrics(r2, rewards, pairs)["train/pairs_same_root"] == pytest.approx(2 / 3)  # (0,1), (3,4)


def test_pair_rows_mark_the_divergence(batch):
    tok, r, rewards, pairs = batch
    rows = pair_rows(tok, r, rewards, pairs, torch.tensor([0.4, 0.2, -0.1]), rows=8)
    first = dict(zip(COLUMNS, rows[0]))
    assert first["better"] == f"<think>\n1+2=3\n3+4={MARK}7\n</think>\n<answer>7</answer>"
    assert first["worse"] == f"<think>\n1+2=3\n3+4={MARK}8\n</think>\n<answer>8</answer>"
    assert first["prompt"] == "1+2+4=?" and first["diverge_step"] == 1 and first["prefix_tokens"] == 12
    assert first["worse_first_wrong_step"] == 1 and first["worse_step_scores"] == "[1, -1]"
    assert (first["better_total"], first["worse_total"]) == pytest.approx((1.7, 0.2))
    assert first["margin"] == pytest.approx(0.4)
    assert dict(zip(COLUMNS, rows[1]))["better"].endswith(f"<answer>{MARK}7</answer>")
    assert dict(zip(COLUMNS, rows[2]))["worse"] == f"<answer>{MARK}8</answer>"
    assert len(rows) == 3 and all(len(row) == len(COLUMNS) for row in rows)


class StubWandb(WandbLogger):
    """A WandbLogger that records instead of starting a W&B process."""

    def __init__(self):
        self.tables, self.metrics = [], []

    def log_table(self, key, columns=None, data=None, dataframe=None, step=None):
        self.tables.append((key, columns, data, step))

    def log_metrics(self, metrics, step=None):
        self.metrics.append((metrics, step))


def test_pair_table_callback_logs_step_unique_tables_to_wandb_only(batch, tmp_path):
    tok, r, rewards, pairs = batch
    out = LossOutput(*(torch.zeros(()),) * 3, torch.tensor([0.4, 0.2, -0.1]), torch.zeros(()))
    module = SimpleNamespace(tok=tok, last_pairs=(r, rewards, pairs, out))
    wb, csv_logger = StubWandb(), CSVLogger(tmp_path)
    cb = PairTableCallback(every_n_steps=2, rows=2)
    for step in (1, 2, 2, 3, 4):  # step 2 twice: one table; odd steps: none
        cb.on_train_batch_end(
            SimpleNamespace(global_step=step, loggers=[csv_logger, wb]), module, None, None, 0
        )
    assert [t[0] for t in wb.tables] == ["pairs/step_2", "pairs/step_4"]
    key, columns, data, step = wb.tables[0]
    assert columns == COLUMNS and len(data) == 2 and step == 2
    assert set(wb.metrics[0][0]) == {
        "pairs/hist/reward_gap",
        "pairs/hist/prefix_tokens",
        "pairs/hist/diverge_step",
    }
    cb.on_train_batch_end(
        SimpleNamespace(global_step=6, loggers=[csv_logger]), module, None, None, 0
    )  # no W&B: no-op


def test_analytics_keys_in_metrics_csv_of_a_short_run(run_cfg):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model on a shared box
    try:
        cfg = run_cfg(
            "pairing=gfpo", "sampler=branch", "trainer.max_steps=2", "callbacks.eval.max_problems=10"
        )
        summary = run(cfg)
    finally:
        torch.set_num_threads(threads)
    assert summary["status"] == "completed"
    with open(Path(cfg.hydra.runtime.output_dir) / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    keys = [
        "train/pairs",
        "train/pairable_group_rate",
        "train/reward_gap",
        "train/reward_gap_p50",
        "train/prefix_tokens_p10",
        "train/prefix_tokens_p90",
        "train/diverge_at/step1",
        "train/diverge_at/answer",
        "train/diverge_is_first_wrong",
        "train/pairs_same_root",
        "train/tokens_generated",
    ]
    for key in keys:
        assert any(row.get(key) for row in rows), f"{key} never logged"
    same_root = [float(row["train/pairs_same_root"]) for row in rows if row.get("train/pairs_same_root")]
    assert max(same_root) > 0  # branch siblings do get paired with each other
