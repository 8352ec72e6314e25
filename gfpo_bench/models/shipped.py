"""The reference warm start that ships inside the package: gfpo_bench/assets/tiny-arith/.

The embedded default's warm start (tiny.py: a char-level Qwen2 model after 2,000 SFT steps on
arith's fallible teacher) is deterministic on one torch/transformers build, but not across builds:
transformers' weight init and float rounding move the bits, and the warm start's val accuracy with
them (62.2% on one build, 64.2% on the next). So the bits ship: every machine starts every run of
the default config from the same model.safetensors, and the first run trains at once.

`shipped_warm_start(settings)` returns the shipped dir when a run's warm-start settings (model size,
seed, SFT config, task config) are the ones the artifact was built with, else None (the run then
builds or reuses a cached warm start, tiny.py). `model.warm_start=build` skips the shipped one.

When must the artifact be rebuilt? When something that determines its weights changes: the SFT
data (the task's training problems and their rendered solutions), the tokenizer, the model builder
or the SFT loop. `sft_fingerprint` hashes exactly that, in a canonical form, and the card records
it; tests/test_shipped_warm_start.py fails when they differ. Canonical means:
- data and tokenizer by content: every (prompt ids, completion ids) pair of the train split in
  order, and the vocabulary; so refactoring the task generator or the format code that produces
  the same examples changes nothing, and any change to the examples does;
- code by its syntax tree with docstrings dropped (`ast.unparse`): the builder, the SFT loop and
  the functions it calls (the whole log-probs module); so comments, docstrings and edits anywhere else (a new loss, a rename in
  another module) change nothing, while any edit to what runs in the SFT does.
The torch and transformers versions are recorded on the card, not hashed: a new library release
does not force a rebuild (the shipped bits stay the reference); a fresh build on another release
may differ, which is why the bits ship. Rebuild with `python scripts/ship_warm_start.py`.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap
from pathlib import Path

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "tiny-arith"
CARD = "card.json"


def read_card(asset_dir: Path = ASSET_DIR) -> dict | None:
    """The artifact's card (settings, fingerprint, sha256, versions, val accuracy), or None."""
    try:
        return json.loads((asset_dir / CARD).read_text())
    except (OSError, ValueError):
        return None


def shipped_warm_start(settings: dict, asset_dir: Path = ASSET_DIR) -> Path | None:
    """The shipped warm start's dir if it was built with exactly these `settings` (tiny.py's
    warm_start_settings: model size, seed, SFT config, task config), else None."""
    card = read_card(asset_dir)
    if card is None or not (asset_dir / "model.safetensors").is_file():
        return None
    return asset_dir if card["settings"] == json.loads(json.dumps(settings, default=str)) else None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def canonical_source(fn) -> str:
    """A function's, class's or module's source regenerated from its syntax tree without docstrings
    or comments: equal for edits that cannot change what runs (comments, docstrings, formatting)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)  # text, steadier across Python versions than ast.dump (its fields vary)


def sft_code():
    """What runs while the warm start is built: the model builder, the SFT loop and what it calls."""
    from gfpo_bench.models import logprobs, prompting, sft, tiny

    return (
        tiny.build_tiny_model,
        tiny._build,
        sft.SFTConfig,
        sft.encode_examples,
        sft.supervised_finetune,
        logprobs,  # the whole module: token_logprobs dispatches to full/chunked log-probs
        prompting.PromptFormatter,
        prompting.encode_prompt,
        prompting.encode_completion,
    )


def sft_fingerprint(task, settings: dict) -> str:
    """sha256 over what determines the warm start's weights (see the module docstring)."""
    from gfpo_bench.models.prompting import PromptFormatter, encode_completion, encode_prompt
    from gfpo_bench.models.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()
    formatter = PromptFormatter()
    h = hashlib.sha256()
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(json.dumps(sorted(tok.get_vocab().items())).encode())
    h.update(json.dumps([tok.pad_token_id, tok.eos_token_id, tok.bos_token_id]).encode())
    for fn in sft_code():
        h.update(canonical_source(fn).encode())
    for problem in task.problems("train"):
        example = (encode_prompt(tok, formatter, task, problem), encode_completion(tok, problem.solution))
        h.update(json.dumps(example).encode())
    return h.hexdigest()
