"""gfpo_bench.compare on fake run dirs with hand-computed statistics.

Fixture: srpo accuracies [0.40, 0.42, 0.44] and gfpo [0.50, 0.52, 0.54] over seeds 0-2, plus a
failed gfpo run (seed 3) whose 0.99 would move the gfpo mean if it leaked in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gfpo_bench.compare import (
    CompareInputError,
    collect_runs,
    collect_wandb_runs,
    main,
    method_curves,
    noise_report,
    render_markdown,
    summarize,
)

ACC = "val/math/accuracy"
SRPO = [0.40, 0.42, 0.44]
GFPO = [0.50, 0.52, 0.54]


def make_run(
    root: Path, job: str, method: str, seed: int, acc: float, status: str = "completed", tokens: bool = True
) -> Path:
    """A run dir as training leaves it: summary.json plus a sparse csv/version_0/metrics.csv.

    Training rows at steps 1-4 log train/tokens_generated = 1000 * step; validation rows at
    steps 2 and 4 log acc - 0.1 and acc.
    """
    run = root / job
    run.mkdir(parents=True)
    summary = {
        "method": method,
        "seed": seed,
        "task": "arith",
        "status": status,
        "error": None if status == "completed" else "CUDA out of memory\nTraceback ...",
        "metrics": {ACC: acc, "train/loss": 0.5},
        "pair_stats": {"pairs_per_step": 10.0 + seed, "reward_gap": 0.8},
        "tokens_generated": 4000 + 100 * seed,
        "wall_time_s": 60.0,
        "steps": 4,
        "budget": {"max_steps": 4, "max_tokens": None},
        "overrides": [f"pairing={method}", f"seed={seed}"],
        "config": {"seed": seed, "optim": {"lr": 1e-5}},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    rows = [{"step": s, "train/loss": 1.0 / s, "train/tokens_generated": 1000.0 * s} for s in range(1, 5)]
    rows += [{"step": 2, ACC: acc - 0.1}, {"step": 4, ACC: acc}]
    frame = pd.DataFrame(rows)
    if not tokens:
        frame = frame.drop(columns="train/tokens_generated")
    (run / "csv" / "version_0").mkdir(parents=True)
    frame.to_csv(run / "csv" / "version_0" / "metrics.csv", index=False)
    return run


@pytest.fixture
def multirun(tmp_path: Path) -> Path:
    root = tmp_path / "multirun"
    for i, acc in enumerate(SRPO):
        make_run(root, f"{i}", "srpo", i, acc)
    for i, acc in enumerate(GFPO):
        make_run(root, f"{3 + i}", "gfpo", i, acc)
    make_run(root, "6", "gfpo", 3, 0.99, status="failed")
    return root


def test_collect_runs_reads_every_run_and_keeps_failed_ones_marked(multirun: Path) -> None:
    df = collect_runs([multirun])
    assert len(df) == 7
    assert (df["status"] == "failed").sum() == 1
    assert sorted(df.loc[df["method"] == "srpo", ACC]) == SRPO
    assert {"tokens_generated", "wall_time_s", "pair/pairs_per_step", "config.optim.lr"} <= set(df.columns)
    assert df.attrs["skipped"] == []


def test_summarize_means_ci_and_order(multirun: Path) -> None:
    summary = summarize(collect_runs([multirun]), [ACC])
    # Best first; the failed gfpo run (0.99) is excluded, so gfpo's mean stays (0.50+0.52+0.54)/3.
    assert list(summary["method"]) == ["gfpo", "srpo"]
    assert summary[ACC + ":mean"].tolist() == pytest.approx([0.52, 0.42])
    assert summary["n_seeds"].tolist() == [3, 3]
    # sd = 0.02 for both; t_{0.975, 2} = 4.303 -> half-width 4.303 * 0.02 / sqrt(3) = 0.0497
    assert summary[ACC + ":ci95"].tolist() == pytest.approx([0.0497, 0.0497], abs=1e-4)
    # pairs_per_step = 10 + seed over seeds 0-2 -> mean 11; tokens 4000 + 100 * seed -> 4100
    assert summary["pair/pairs_per_step:mean"].tolist() == pytest.approx([11.0, 11.0])
    assert summary["tokens_generated:mean"].tolist() == pytest.approx([4100.0, 4100.0])


def test_render_markdown_shows_mean_pm_ci_and_na_for_one_seed(multirun: Path) -> None:
    make_run(multirun, "7", "dapo", 0, 0.30)
    table = render_markdown(summarize(collect_runs([multirun]), [ACC]), [ACC])
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["gfpo", "srpo", "dapo"]
    assert "| 0.520 ± 0.050 | 3 |" in rows[0]
    assert "| 0.300 ±  n/a | 1 |" in rows[2]


def test_noise_report_clear_difference_is_significant(multirun: Path) -> None:
    (line,) = noise_report(collect_runs([multirun]), ACC)
    # Welch: t = 0.10 / sqrt(2 * 0.02**2 / 3) = 6.12, df = 4 -> p = 0.0036. CIs [0.470, 0.570]
    # and [0.370, 0.470] just miss each other (0.4703 > 0.4697), so no overlap flag.
    assert line == "gfpo vs srpo: +10.0 pts, p=0.0036 — significant at p<0.05"


def test_noise_report_overlapping_seeds_are_within_noise(tmp_path: Path) -> None:
    for i, (a, b) in enumerate(zip([0.40, 0.50, 0.60], [0.45, 0.55, 0.65], strict=True)):
        make_run(tmp_path, f"a{i}", "srpo", i, a)
        make_run(tmp_path, f"b{i}", "gfpo", i, b)
    (line,) = noise_report(collect_runs([tmp_path]), ACC)
    # Welch: t = 0.05 / sqrt(2 * 0.1**2 / 3) = 0.61, df = 4 -> p = 0.57
    assert line == "gfpo vs srpo: +5.0 pts, p=0.57 — within noise (p ≥ 0.05); 95% CIs overlap"


def test_noise_report_one_seed_cannot_tell(multirun: Path) -> None:
    make_run(multirun, "7", "dapo", 0, 0.30)
    lines = noise_report(collect_runs([multirun]), ACC)
    assert "gfpo vs dapo: +22.0 pts — cannot tell (need ≥ 2 seeds each; have 3 and 1)" in lines
    assert lines[-1].startswith("(2 comparisons: with Bonferroni correction, require p < 0.025")


def test_curves_on_token_axis_average_seeds(tmp_path: Path) -> None:
    make_run(tmp_path, "0", "gfpo", 0, 0.5)
    make_run(tmp_path, "1", "gfpo", 1, 0.7)
    curves, x_label = method_curves(collect_runs([tmp_path]), ACC)
    c = curves["gfpo"]
    assert x_label == "generated tokens"
    # val at steps 2 and 4 -> 2000 and 4000 tokens; values (0.4, 0.5) and (0.6, 0.7)
    assert (c.x[0], c.x[-1]) == (2000.0, 4000.0)
    assert (c.mean[0], c.lo[0], c.hi[0]) == pytest.approx((0.5, 0.4, 0.6))
    assert c.mean[-1] == pytest.approx(0.6)


def test_curves_fall_back_to_steps_when_a_run_lacks_tokens(tmp_path: Path) -> None:
    make_run(tmp_path, "0", "gfpo", 0, 0.5)
    make_run(tmp_path, "1", "srpo", 0, 0.5, tokens=False)
    curves, x_label = method_curves(collect_runs([tmp_path]), ACC)
    assert x_label == "training step"
    assert (curves["srpo"].x[0], curves["srpo"].x[-1]) == (2.0, 4.0)


def test_cli_writes_report_table_and_plots(multirun: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main([str(multirun), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| gfpo | 0.520 ± 0.050 | 3 |" in printed
    assert "6 completed runs in the means; 1 failed run excluded." in printed
    assert "## Failed runs (1, excluded from the means)" in printed
    assert "- gfpo seed 3: failed (CUDA out of memory)" in printed
    assert (out / "table.md").read_text() in printed
    table = pd.read_csv(out / "table.csv")
    assert table[ACC + ":mean"].tolist() == pytest.approx([0.52, 0.42])
    assert table[ACC + ":n"].tolist() == [3, 3]
    png = (out / "curve_val_math_accuracy.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_cli_default_out_is_first_dir_comparison(multirun: Path) -> None:
    assert main([str(multirun), "--metrics", ACC]) == 0
    assert (multirun / "comparison" / "table.md").is_file()


def test_cli_missing_dir_is_one_error_line_exit_2(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: no such directory: {tmp_path / 'nope'}\n"


def test_cli_dir_without_runs_exit_2(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: no summary.json found under {tmp_path}")


def test_cli_unknown_metric_exit_2(multirun: Path, capsys) -> None:
    assert main([str(multirun), "--metrics", "val/code/pass@1"]) == 2
    assert (
        "no completed run reports val/code/pass@1 (val metrics: val/math/accuracy)" in capsys.readouterr().err
    )


def test_corrupt_summary_is_skipped_and_counted(multirun: Path, capsys) -> None:
    (multirun / "9").mkdir()
    (multirun / "9" / "summary.json").write_text('{"method": "gfpo", "seed":')  # truncated write
    df = collect_runs([multirun])
    assert len(df) == 7 and len(df.attrs["skipped"]) == 1
    assert main([str(multirun)]) == 0
    assert "1 corrupt summary.json skipped" in capsys.readouterr().out


class FakeRun:
    def __init__(self, run_id: str, method: str, seed: int, acc: float, state: str = "finished") -> None:
        self.id, self.name, self.url, self.group, self.state = run_id, run_id, None, None, state
        self.config = {"pairing": {"name": method}, "seed": seed, "task": "arith"}
        self.summary = {ACC: acc, "train/tokens_generated": 4000, "_runtime": 61.0, "_step": 4}

    def history(self, samples: int, pandas: bool) -> pd.DataFrame:
        return pd.DataFrame({"_step": [2, 4], ACC: [0.1, 0.2], "train/tokens_generated": [2e3, 4e3]})


class FakeApi:
    def __init__(self, runs: list[FakeRun]) -> None:
        self._runs = runs

    def runs(self, project: str) -> list[FakeRun]:
        if project != "me/bench":
            raise ValueError(f"Could not find project {project}")
        return self._runs


def test_wandb_runs_are_mirrored_and_collected(tmp_path: Path) -> None:
    api = FakeApi(
        [FakeRun("a", "gfpo", 0, 0.5), FakeRun("b", "gfpo", 1, 0.6), FakeRun("c", "srpo", 0, 0.2, "crashed")]
    )
    df = collect_wandb_runs("me/bench", tmp_path, api=api).set_index("run_dir")
    assert df.loc[str(tmp_path / "a"), [ACC, "tokens_generated", "wall_time_s"]].tolist() == [0.5, 4000, 61.0]
    assert df.loc[str(tmp_path / "c"), "status"] == "crashed"
    assert (tmp_path / "a" / "metrics.csv").is_file()
    with pytest.raises(
        CompareInputError, match="cannot read W&B project 'me/missing': Could not find project"
    ):
        collect_wandb_runs("me/missing", tmp_path, api=api)


def test_gain_over_the_warm_start_is_a_column_with_its_ci(tmp_path: Path) -> None:
    root = tmp_path / "gain"
    for seed, (start, end) in enumerate([(0.60, 0.80), (0.60, 0.84), (0.60, 0.82)]):
        run = make_run(root, f"{seed}", "srpo", seed, end)
        summary = json.loads((run / "summary.json").read_text())
        summary["warm_start"] = {ACC: start, "sft_steps": 2000}
        (run / "summary.json").write_text(json.dumps(summary))
    df = collect_runs(root)
    assert df[f"{ACC}_gain"].round(4).tolist() == [0.20, 0.24, 0.22]
    table = summarize(df, [f"{ACC}_gain"])
    assert table[f"{ACC}_gain:mean"].round(4).tolist() == [0.22]


# ---- recommendation verdicts (scripts/reproduce_tables.sh's Table 2) --------------------------------
def test_welch_greater_is_the_one_sided_half_of_the_two_sided_test() -> None:
    from scipy import stats

    from gfpo_bench.compare.stats import Sample, welch_greater

    a, b = Sample(0.52, 0.02, 3), Sample(0.42, 0.03, 4)
    two_sided = stats.ttest_ind_from_stats(0.52, 0.02, 3, 0.42, 0.03, 4, equal_var=False).pvalue
    assert welch_greater(a, b) == pytest.approx(two_sided / 2)  # a is ahead: half the two-sided p
    assert welch_greater(b, a) == pytest.approx(1 - two_sided / 2)  # b > a is the wrong direction
    assert welch_greater(a, Sample(0.4, 0.0, 1)) != welch_greater(a, Sample(0.4, 0.0, 1))  # NaN: 1 seed


def test_holm_adjusts_step_down_and_keeps_nan() -> None:
    from gfpo_bench.compare.stats import holm

    # sorted 0.01, 0.02, 0.04 (+ NaN counted as 1): x4, x3, x2 -> 0.04, 0.06, 0.08; NaN stays NaN
    adjusted = holm([0.04, 0.01, float("nan"), 0.02])
    assert adjusted[:2] == pytest.approx([0.08, 0.04]) and adjusted[3] == pytest.approx(0.06)
    assert adjusted[2] != adjusted[2]


def test_recommendation_verdicts_held_did_not_hold_not_shown() -> None:
    from gfpo_bench.compare.stats import Sample, holm, recommendation_verdicts, welch_greater

    s = lambda mean, sd=0.01, n=4: Sample(mean, sd, n)  # noqa: E731
    rows = {
        # clearly ahead of both: held; the weaker lead (over b, 0.65) decides the row's p
        "ahead": (s(0.70), {"a": s(0.50), "b": s(0.65)}),
        # c clearly ahead of the recommended one: did not hold
        "behind": (s(0.50), {"c": s(0.70), "d": s(0.49)}),
        # level with an alternative: not shown
        "level": (s(0.60), {"e": s(0.60, 0.05), "f": s(0.40)}),
        # one seed: no test can be run, not shown
        "one seed": (s(0.90, n=1), {"g": s(0.10)}),
    }
    v = recommendation_verdicts(rows)
    assert {row: x.verdict for row, x in v.items()} == {
        "ahead": "held",
        "behind": "did not hold",
        "level": "not shown",
        "one seed": "not shown",
    }
    assert v["ahead"].weakest == "b" and v["ahead"].p_held == welch_greater(s(0.70), s(0.65))
    assert v["behind"].strongest == "c" and v["behind"].p_failed == welch_greater(s(0.70), s(0.50))
    held = [x.p_held for x in v.values()]
    assert [x.p_held_holm for x in v.values()][:3] == pytest.approx(holm(held)[:3])


def test_holm_across_rows_can_take_a_held_back() -> None:
    """Three rows each ahead at one-sided p ~ 0.03: every row passes alone, none after Holm (x3)."""
    from gfpo_bench.compare.stats import Sample, recommendation_verdicts

    rec, alt = Sample(0.55, 0.03, 4), Sample(0.50, 0.03, 4)  # t = 2.36 on 6 df: p = 0.029
    v = recommendation_verdicts({row: (rec, {"x": alt}) for row in ("r1", "r2", "r3")})
    assert all(0.02 < x.p_held < 0.04 and x.p_held_holm > 0.05 for x in v.values())
    assert {x.verdict for x in v.values()} == {"not shown"}
    alone = recommendation_verdicts({"r1": (rec, {"x": alt})})
    assert alone["r1"].verdict == "held"


def test_table_script_writes_the_verdicts_of_recommendation_verdicts(tmp_path: Path) -> None:
    """scripts/reproduce_tables.sh's embedded Python, on hand-made comparisons: the verdict column is
    `recommendation_verdicts`' (held / did not hold / not shown), with its Holm-adjusted p-values."""
    import subprocess
    import sys

    script = (Path(__file__).resolve().parents[1] / "scripts" / "reproduce_tables.sh").read_text()
    embedded = script.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    rows = {  # row: {method: (mean, sd, n)}; recommended: gfpo, vapo, srpo
        "table2_reasoning": {"gfpo": (0.70, 0.01, 4), "srpo": (0.60, 0.01, 4), "vapo": (0.65, 0.01, 4)},
        "table2_noisy_reward": {"vapo": (0.50, 0.01, 4), "srpo": (0.70, 0.01, 4)},
        "table2_small_compute": {"srpo": (0.60, 0.05, 4), "dapo": (0.60, 0.05, 4)},
    }
    for row, methods in rows.items():
        (tmp_path / row / "comparison").mkdir(parents=True)
        pd.DataFrame(
            [
                {"method": m, f"{ACC}:mean": mu, f"{ACC}:sd": sd, f"{ACC}:n": n, f"{ACC}:ci95": 0.02}
                for m, (mu, sd, n) in methods.items()
            ]
        ).to_csv(tmp_path / row / "comparison" / "table.csv", index=False)
        (tmp_path / row / "job").mkdir()
        summary = {"budget": {"max_tokens": 1000}, "eval_history": [{"step": 0, ACC: 0.5}]}
        (tmp_path / row / "job" / "summary.json").write_text(json.dumps(summary))
    md = tmp_path / "tables.md"
    subprocess.run(
        [sys.executable, "-c", embedded, str(tmp_path), str(md), "0,1,2,3", "1", " ".join(rows), "1"],
        check=True,
        capture_output=True,
    )
    verdicts = {
        line.split(" | ")[0][2:]: line.rsplit(" | ", 1)[1][:-2]
        for line in md.read_text().splitlines()
        if line.startswith("| ") and "(vs " in line
    }
    assert verdicts == {
        "reasoning math (multi-step arithmetic)": "held",
        "noisy reward (20% of R_final flipped)": "did not hold",
        "small model / tight compute": "not shown",
    }
