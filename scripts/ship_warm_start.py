# python scripts/ship_warm_start.py            # build the default warm start, score it, write the shipped artifact
# python scripts/ship_warm_start.py --check    # rebuild into a temp cache and compare its sha256 with the card's
"""Build the embedded default's reference warm start and ship it: gfpo_bench/assets/tiny-arith/.

The build is the default config's (`model=tiny task=arith`, 2,000 SFT steps, one CPU thread: about
5 minutes), made with `model.warm_start=build` so it never reads the shipped copy. The artifact is
the saved HF model dir (model.safetensors, config.json, tokenizer files) plus:
- card.json: the settings it was built with (what `shipped_warm_start` matches a run against), the
  SFT fingerprint (models/shipped.py; tests/test_shipped_warm_start.py compares it with the code),
  the sha256 of model.safetensors, the torch / transformers / Python versions, and its val scores
  (greedy on the 500 val problems; sampled: 4 samples per problem at the training temperature);
- README.md: the same, for people.
Rebuild whenever the fingerprint test fails (the SFT data, tokenizer, builder or loop changed),
then re-measure every number that starts from the warm start.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

import torch
import transformers
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from gfpo_bench.building import build
from gfpo_bench.distributed import weights_sha256
from gfpo_bench.eval.evaluate import evaluate_policy
from gfpo_bench.models.loading import load_model_and_tokenizer
from gfpo_bench.models.prompting import PromptFormatter
from gfpo_bench.models.sft import SFTConfig
from gfpo_bench.models.shipped import ASSET_DIR, CARD, file_sha256, read_card, sft_fingerprint
from gfpo_bench.models.tiny import ensure_tiny, warm_start_settings
from gfpo_bench.policies.model import ModelPolicy

SAMPLE_SEED, SAMPLED_N = 1234, 4  # as conf/callbacks/default.yaml's evaluation


def default_config(cache: str):
    with initialize_config_module(config_module="gfpo_bench.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["model.warm_start=build", f"model.cache_dir={cache}"])
    return cfg


def settings_of(cfg) -> dict:
    m = cfg.model
    task_key = json.dumps(OmegaConf.to_container(cfg.task, resolve=True), sort_keys=True)
    return warm_start_settings(m.hidden, m.layers, m.heads, m.max_len, m.seed, SFTConfig(**m.sft), task_key)


def val_scores(model_dir: Path, cfg, task, sampled: bool = True) -> dict[str, float]:
    """Greedy (and sampled) accuracy on the val split, as the evaluation callback computes them."""
    model, tok = load_model_and_tokenizer(str(model_dir), "float32")
    problems = task.problems("val")[: cfg.callbacks.eval.max_problems]
    gen = cfg.sampler
    greedy = ModelPolicy(
        model, tok, task, PromptFormatter(), gen.max_new_tokens, cfg.callbacks.eval.batch_size
    )
    out = {"val_greedy_accuracy": evaluate_policy(greedy, task, problems).metrics["val/math/accuracy"]}
    if not sampled:
        return out
    sampled = ModelPolicy(
        model, tok, task, PromptFormatter(), gen.max_new_tokens, cfg.callbacks.eval.batch_size,
        temperature=gen.temperature, top_p=gen.top_p, greedy=False,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SAMPLE_SEED)
        out["val_sampled_accuracy"] = evaluate_policy(sampled, task, problems, n=SAMPLED_N).metrics[
            "val/math/accuracy"
        ]
    out["val_problems"] = len(problems)
    return out


def card_readme(card: dict) -> str:
    return f"""# The reference warm start of the embedded default (task=arith, model=tiny)

A {card["params"] / 1e6:.2f}M-parameter Qwen2-architecture char-level LM, built from a transformers
config and trained by {card["settings"]["sft"]["steps"]:,} SFT steps on arith's fallible teacher
(`gfpo_bench/models/tiny.py`, `gfpo_bench/models/sft.py`). Every run of the default config starts
from these bits (`model.warm_start=shipped`); `model.warm_start=build` builds one on your machine.

| | |
|---|---|
| val accuracy, greedy ({card["val_problems"]} problems) | {card["val_greedy_accuracy"]:.1%} |
| val accuracy, sampled (T=1, {SAMPLED_N} per problem, seed {SAMPLE_SEED}) | {card["val_sampled_accuracy"]:.1%} |
| model.safetensors sha256 | `{card["sha256"]}` |
| weights hash (`warm_start.weights_sha256` in a run's summary.json) | `{card["weights_sha256"]}` |
| built with | torch {card["torch"]}, transformers {card["transformers"]}, Python {card["python"]} |
| built on | {card["built"]} |
| SFT fingerprint | `{card["sft_fingerprint"][:16]}…` |

Rebuild (`python scripts/ship_warm_start.py`) when tests/test_shipped_warm_start.py says the SFT
fingerprint changed: the SFT data, the tokenizer, the model builder or the SFT loop (see
`gfpo_bench/models/shipped.py`). A build on another torch or transformers release may give other
bits; that is why these ship.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="rebuild and compare with the shipped sha256")
    ap.add_argument("--cache", default=None, help="warm-start cache dir (default: a temp dir)")
    ap.add_argument("--from", dest="source", default=None, help="ship this already-built warm-start dir")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cache = args.cache or tempfile.mkdtemp(prefix="gfpo-ship-")
    cfg = default_config(cache)
    task = build(cfg.task)
    settings = settings_of(cfg)
    if args.source:
        built = Path(args.source)
        spec = json.loads((built / "warm_start.json").read_text())  # what tiny.py built it with
        if {k: spec.get(k) for k in settings} != json.loads(json.dumps(settings, default=str)):
            sys.exit(f"{built} was built with other settings than the default config's; not shipped")
    else:
        m = cfg.model
        with torch.random.fork_rng(devices=[]):  # as models/factory.py builds it
            built = ensure_tiny(
                task, cache, m.hidden, m.layers, m.heads, m.max_len, m.seed, SFTConfig(**m.sft),
                json.dumps(OmegaConf.to_container(cfg.task, resolve=True), sort_keys=True), warm_start="build",
            )  # fmt: skip
    sha = file_sha256(built / "model.safetensors")
    if args.check:
        card = read_card()
        same = card is not None and card["sha256"] == sha
        print(f"built {sha}\nshipped {card and card['sha256']}\n{'identical' if same else 'DIFFERENT'}")
        sys.exit(0 if same else 1)
    model, _ = load_model_and_tokenizer(str(built), "float32")
    card = {
        "settings": json.loads(json.dumps(settings, default=str)),
        "sft_fingerprint": sft_fingerprint(task, settings),
        "sha256": sha,
        "weights_sha256": weights_sha256(model.state_dict()),  # what a run's summary.json records
        "params": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "built": date.today().isoformat(),
        **val_scores(built, cfg, task),
    }
    if ASSET_DIR.exists():
        shutil.rmtree(ASSET_DIR)
    shutil.copytree(built, ASSET_DIR, ignore=shutil.ignore_patterns("warm_start.json"))
    (ASSET_DIR / CARD).write_text(json.dumps(card, indent=2) + "\n")
    (ASSET_DIR / "README.md").write_text(card_readme(card))
    print(json.dumps({k: v for k, v in card.items() if k != "settings"}, indent=2))


if __name__ == "__main__":
    main()
