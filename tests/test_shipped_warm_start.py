"""The reference warm start shipped in the package (gfpo_bench/assets/tiny-arith/, models/shipped.py):
the default config trains from it without building anything, its bits are the card's, it scores on
val what its card says, and its card's SFT fingerprint is the code's (else: rebuild it)."""

from __future__ import annotations

import importlib.util
import json
import platform

import torch
import transformers
from helpers import REPO, compose_cfg
from omegaconf import OmegaConf

from gfpo_bench.building import build
from gfpo_bench.models.factory import build_model
from gfpo_bench.models.sft import SFTConfig
from gfpo_bench.models.shipped import ASSET_DIR, canonical_source, file_sha256, read_card, sft_fingerprint
from gfpo_bench.models.tiny import warm_start_settings

CARD = read_card()
REBUILD = "rebuild it with `python scripts/ship_warm_start.py` and re-measure the numbers that start from it"


def ship_script():
    """scripts/ship_warm_start.py as a module: the card's numbers come from its `val_scores`."""
    spec = importlib.util.spec_from_file_location("ship_warm_start", REPO / "scripts" / "ship_warm_start.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def default_settings(cfg) -> dict:
    m = cfg.model
    task_key = json.dumps(OmegaConf.to_container(cfg.task, resolve=True), sort_keys=True)
    return warm_start_settings(m.hidden, m.layers, m.heads, m.max_len, m.seed, SFTConfig(**m.sft), task_key)


def test_the_card_exists_and_the_bits_are_the_cards():
    assert CARD is not None, f"no card.json in {ASSET_DIR}"
    assert file_sha256(ASSET_DIR / "model.safetensors") == CARD["sha256"]


def test_the_default_config_trains_from_the_shipped_warm_start(tmp_path, monkeypatch):
    monkeypatch.setenv("GFPO_BENCH_CACHE", str(tmp_path / "empty-cache"))
    cfg = compose_cfg([])
    task_key = json.dumps(OmegaConf.to_container(cfg.task, resolve=True), sort_keys=True)  # as train.py
    _, tok, _ = build_model(cfg.model, build(cfg.task), task_key)
    assert tok.name_or_path == str(ASSET_DIR)
    assert not (tmp_path / "empty-cache").exists()  # nothing was built or cached


def test_the_shipped_settings_are_the_default_configs():
    """A changed default (model size, SFT steps, a task knob) must come with a rebuilt artifact."""
    settings = json.loads(json.dumps(default_settings(compose_cfg([])), default=str))
    assert settings == CARD["settings"], f"the default config's warm-start settings changed: {REBUILD}"


def test_the_shipped_warm_start_scores_its_cards_val_accuracy():
    cfg = compose_cfg([])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the card was measured: another thread count may reorder float sums
    try:
        scores = ship_script().val_scores(ASSET_DIR, cfg, build(cfg.task), sampled=False)
    finally:
        torch.set_num_threads(threads)
    n = CARD["val_problems"]
    right, card_right = round(scores["val_greedy_accuracy"] * n), round(CARD["val_greedy_accuracy"] * n)
    same_build = (torch.__version__, transformers.__version__) == (CARD["torch"], CARD["transformers"])
    if same_build:  # the card's own libraries: the very number
        assert right == card_right
    else:  # other kernels may flip a near-tie of the greedy argmax: at most 5 of the 500 problems
        assert abs(right - card_right) <= 5


def test_the_sft_inputs_are_the_ones_the_artifact_was_built_from():
    """Fails when the SFT data, the tokenizer, the model builder or the SFT loop changed."""
    cfg = compose_cfg([])
    got = sft_fingerprint(build(cfg.task), default_settings(cfg))
    python = ".".join(platform.python_version_tuple()[:2])
    where = (
        ""
        if CARD["python"].startswith(python + ".")
        else f" (or: the card's Python {CARD['python']} writes code as text differently from this {python})"
    )
    assert got == CARD["sft_fingerprint"], (
        f"what determines the warm start's weights changed{where}: {REBUILD}"
    )


def test_the_fingerprint_ignores_comments_and_docstrings_but_not_code():
    def original(x):
        """Doc."""
        return x * 2

    def commented(x):
        # a comment, and no docstring
        return x * 2

    def edited(x):
        """Doc."""
        return x * 3

    strip_name = lambda f: canonical_source(f).replace(f.__name__, "f")  # noqa: E731
    assert strip_name(original) == strip_name(commented)
    assert strip_name(original) != strip_name(edited)


def test_a_runs_summary_records_the_weights_it_started_from(run_cfg):
    """Every number a run reports names its warm start: summary.json's warm_start.weights_sha256."""
    from gfpo_bench.train import run

    summary = run(run_cfg("trainer.max_steps=1", "callbacks.eval.at_start=false"))
    assert summary["warm_start"]["weights_sha256"] == CARD["weights_sha256"]
