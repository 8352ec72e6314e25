"""Load a causal LM and its tokenizer through transformers, from a local dir or a hub name.

One code path for every model: the embedded tiny model is saved with save_pretrained and read back
here exactly like `Qwen/Qwen2.5-0.5B-Instruct`, with plain AutoTokenizer / AutoModelForCausalLM and
nothing project-specific. Failures become one clear line (`ModelLoadError`), and so does a
tokenizer that would silently change text.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from gfpo_bench.config_schema import require
from gfpo_bench.errors import ModelLoadError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _looks_local(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or Path(name).exists()


# Text every tokenizer a run can use must give back unchanged: steps are lines, and the format
# markers and numbers are what the reward reads.
PROBE = "<think>\n12 + 3 = 15\n</think>\n<answer>15</answer>"


def check_round_trip(tok: PreTrainedTokenizerBase, name: str) -> None:
    """Refuse a tokenizer that silently changes text (e.g. a char-level tokenizer saved by an older
    gfpo-bench, which transformers 5 reloads as a Qwen2Tokenizer that drops every newline)."""
    back = tok.decode(tok(PROBE, add_special_tokens=False)["input_ids"], skip_special_tokens=True)
    if back != PROBE:
        raise ModelLoadError(
            f"the tokenizer of {name!r} does not round-trip text ({PROBE!r} -> {back!r}); if it was "
            "saved by an older gfpo-bench, rebuild the warm start or re-save it with "
            "gfpo_bench.models.tokenizer.build_char_tokenizer().save_pretrained(<dir>)"
        )


def load_model_and_tokenizer(
    name_or_path: str, dtype: str = "float32", trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    require("model.dtype", dtype)  # the choices DTYPES maps: config_schema.py
    if _looks_local(name_or_path) and not Path(name_or_path).expanduser().is_dir():
        raise ModelLoadError(f"model path not found: {name_or_path}")
    path = str(Path(name_or_path).expanduser()) if _looks_local(name_or_path) else name_or_path
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=DTYPES[dtype], trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"could not load model {name_or_path!r}: {first}") from e
    check_round_trip(tok, name_or_path)
    if tok.pad_token_id is None:  # many causal LMs ship without a pad token
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"  # batched generation needs left padding
    return model, tok
