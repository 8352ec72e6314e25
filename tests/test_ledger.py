"""The step ledger (gfpo_bench/ledger.py): one process and several ranks close a step the same way."""

from __future__ import annotations

from gfpo_bench.ledger import StepLedger


def test_one_process_counts_tokens_skips_and_logs_each_value_as_recorded():
    ledger = StepLedger()
    ledger.count_tokens(100)
    ledger.record({"train/reward/total": 0.3, "train/pairs": 5.0}, weight=8)
    ledger.skip("skipped")
    assert ledger.tokens_generated == 0 and ledger.step_tokens == 100  # counted when the step closes
    logged = ledger.close()
    assert logged == {
        "train/reward/total": 0.3,  # one entry: its value as it is (not 8 * 0.3 / 8)
        "train/pairs": 5.0,
        "train/tokens_generated": 100.0,
        "train/skipped_batches": 1.0,
    }
    ledger.count_tokens(50)
    assert "train/skipped_batches" not in ledger.close()  # logged on a skipped step only
    assert ledger.state_dict() == {"tokens_generated": 150, "skipped_batches": 1, "nonfinite_steps": 0}


def test_ranks_are_reduced_counts_summed_rates_weighted():
    ranks = [StepLedger(), StepLedger()]
    ranks[0].count_tokens(10)
    ranks[0].record({"train/pairs": 2.0, "train/reward/total": 1.0}, weight=1)
    ranks[1].count_tokens(30)
    ranks[1].record({"train/pairs": 3.0, "train/reward/total": 0.0}, weight=3)
    ranks[1].skip("nonfinite")
    # what all_gather_object gives every rank: each rank's open step, in rank order
    every_rank = [{"tokens": r.step_tokens, "entries": r._entries, "skips": r._skips} for r in ranks]
    logged = [r.close(lambda mine: every_rank) for r in ranks]
    assert logged[0] == logged[1]  # every rank logs the global numbers
    assert logged[0]["train/pairs"] == 5.0 and logged[0]["train/reward/total"] == 0.25
    assert logged[0]["train/tokens_generated"] == 40.0 and logged[0]["train/nonfinite_steps"] == 1.0
    assert all(r.tokens_generated == 40 and r.nonfinite_steps == 1 for r in ranks)
    assert ranks[1].rank_tokens_generated == 30  # its own share, for the DDP report


def test_the_counters_survive_a_checkpoint():
    a = StepLedger()
    a.count_tokens(7)
    a.skip("skipped")
    a.close()
    b = StepLedger()
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict()
    b.load_state_dict({})  # a checkpoint written before the counters existed
    assert b.state_dict() == {"tokens_generated": 0, "skipped_batches": 0, "nonfinite_steps": 0}
