"""The tournament's plan (scripts/tournament.py) keeps the protocol (docs/protocol.md): the same tuning
budget for every method with today's defaults in the grid, report seeds disjoint from the tuning seeds
and the same for every method, one sampler for every row, and rows that differ in what they claim to."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter

import pytest
from helpers import REPO, compose_cfg

sys.path.insert(0, str(REPO / "scripts"))
_spec = importlib.util.spec_from_file_location("tournament", REPO / "scripts" / "tournament.py")
T = importlib.util.module_from_spec(_spec)
sys.modules["tournament"] = T
_spec.loader.exec_module(T)


def test_every_method_gets_the_same_tuning_budget_with_its_defaults_in_the_grid():
    jobs = T.tuning_jobs()
    per_method = Counter(j.method for j in jobs)
    assert set(per_method.values()) == {len(T.LRS) * 2 * len(T.TUNE_SEEDS)}
    assert len({j.name for j in jobs}) == len(jobs)  # one result dir per job
    for method, (knob, values) in T.KNOBS.items():
        default = compose_cfg([f"pairing={method}"])
        section, name = knob.split(".")
        assert str(default[section][name]) == str(type(default[section][name])(values[0])), method
        assert str(default.optim.lr) == str(float(T.LRS[0]))
    assert all(j.row == T.TUNE_ROW for j in jobs)


def test_report_seeds_are_fresh_and_every_row_runs_each_method_with_its_choice():
    assert len(T.REPORT_SEEDS) >= 4 and not set(T.REPORT_SEEDS) & set(T.TUNE_SEEDS)
    choices = {
        m: {"settings": {"optim.lr": T.LRS[1], knob: values[1]}} for m, (knob, values) in T.KNOBS.items()
    }
    jobs = T.report_jobs(list(T.ROWS), choices)
    for row, (methods, _) in T.ROWS.items():
        seeds = {m: sorted(j.seed for j in jobs if j.row == row and j.method == m) for m in methods}
        assert all(s == sorted(T.REPORT_SEEDS) for s in seeds.values()), row
    gfpo = next(j for j in jobs if j.method == "gfpo")
    assert ("pairing.prefix_rule", "fraction") in gfpo.settings and "optim.lr=1e-04" in gfpo.overrides()
    sched = next(j for j in jobs if j.method == "dapo_to_gfpo").overrides()
    assert (
        "schedule.first.pairing.eps=0.1" in sched and "schedule.second.pairing.prefix_rule=fraction" in sched
    )
    assert "callbacks.eval.split=test" in gfpo.overrides()
    assert "callbacks.eval.split=val" in T.tuning_jobs()[0].overrides()


@pytest.mark.parametrize("row", list(T.ROWS))
def test_every_row_uses_the_branch_sampler(row):
    assert compose_cfg(T.experiment(row)).sampler._target_.endswith("BranchSampler")


def test_a_schedule_takes_its_stages_knobs_and_refuses_what_it_cannot_place():
    choices = {"srpo": {"settings": {"optim.lr": "1e-04", "pairing.max_pairs_per_group": "16"}},
               "gfpo": {"settings": {"optim.lr": "3e-05", "pairing.prefix_rule": "fraction"}},
               "vapo": {"settings": {"optim.lr": "3e-05", "loss.beta": "0.3"}}}  # fmt: skip
    settings = T.chosen_settings("srpo_to_gfpo", choices)
    assert settings == (("optim.lr", "1e-04"), ("first:pairing.max_pairs_per_group", "16"),
                        ("second:pairing.prefix_rule", "fraction"))  # fmt: skip
    T.SCHEDULES["vapo_to_gfpo"] = ("vapo", "gfpo")
    try:
        with pytest.raises(SystemExit, match="not its pairing's"):
            T.chosen_settings("vapo_to_gfpo", choices)
    finally:
        del T.SCHEDULES["vapo_to_gfpo"]


def test_the_rows_differ_in_what_they_claim_to():
    reasoning = compose_cfg(["experiment=table2_reasoning"])
    varied = compose_cfg(["experiment=table2_reasoning_varied"])
    mixed = compose_cfg(["experiment=table2_sft_mixed"])
    cold = compose_cfg(["experiment=table2_cold_start"])
    assert varied.task.commute > 0 and reasoning.task.commute == 0
    assert compose_cfg(["experiment=table1_pairs_varied"]).task.commute == varied.task.commute
    assert mixed.module.sft_mix.coef > 0 and reasoning.module.sft_mix.coef == 0 == cold.module.sft_mix.coef
    assert mixed.model.sft.steps == reasoning.model.sft.steps != cold.model.sft.steps


def test_choose_picks_the_best_mean_and_keeps_the_default_on_a_tie(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "RESULTS", tmp_path)
    monkeypatch.setattr(T, "CHOICES", tmp_path / "choices.json")
    monkeypatch.setattr(T, "KNOBS", {"grpo": T.KNOBS["grpo"], "vapo": T.KNOBS["vapo"]})
    val = {("grpo", "1e-04", "sequence"): [0.80, 0.84], ("vapo",): [0.7, 0.7]}  # vapo: all tied
    for job in T.tuning_jobs(["grpo", "vapo"]):
        acc = val.get((job.method, *dict(job.settings).values()), val.get((job.method,), [0.5, 0.5]))
        job.result.parent.mkdir(parents=True)
        summary = {
            "metrics": {T.ACC: acc[job.seed - T.TUNE_SEEDS[0]]},
            "config": {"callbacks": {"eval": {"split": "val"}}},
        }
        job.result.write_text(json.dumps(summary))
    choices = T.choose()
    assert choices["grpo"]["settings"] == {"optim.lr": "1e-04", "pairing.aggregation": "sequence"}
    assert choices["vapo"]["settings"] == {"optim.lr": T.LRS[0], "loss.beta": "0.1"}
    assert choices["grpo"]["n_trials"] == 4 and choices["grpo"]["runs"] == 8
