"""Load a causal LM and its tokenizer through transformers, from a local dir or a hub name.

One code path for every model: the embedded tiny model is saved with save_pretrained and read back
here exactly like `Qwen/Qwen2.5-0.5B-Instruct`. Failures become one clear line (`ModelLoadError`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(RuntimeError):
    pass


def _looks_local(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or Path(name).exists()


_GENERIC_TOKENIZERS = {"TokenizersBackend", "PreTrainedTokenizerFast"}


def load_tokenizer(path: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """AutoTokenizer, except that a locally saved generic `tokenizers` tokenizer is loaded as itself.

    transformers 5 picks the tokenizer class from config.json's model_type when one exists (a qwen2
    config -> Qwen2Tokenizer), which would re-tokenize our char-level vocabulary with Qwen's
    pre-tokenizer and silently drop newlines before the format markers.
    """
    cfg = Path(path) / "tokenizer_config.json"
    if cfg.exists() and json.loads(cfg.read_text()).get("tokenizer_class") in _GENERIC_TOKENIZERS:
        return PreTrainedTokenizerFast.from_pretrained(path)
    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)


def load_model_and_tokenizer(
    name_or_path: str, dtype: str = "float32", trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if dtype not in DTYPES:
        raise ModelLoadError(f"model.dtype={dtype!r} is not one of {sorted(DTYPES)}")
    if _looks_local(name_or_path) and not Path(name_or_path).expanduser().is_dir():
        raise ModelLoadError(f"model path not found: {name_or_path}")
    path = str(Path(name_or_path).expanduser()) if _looks_local(name_or_path) else name_or_path
    try:
        tok = load_tokenizer(path, trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=DTYPES[dtype], trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"could not load model {name_or_path!r}: {first}") from e
    if tok.pad_token_id is None:  # many causal LMs ship without a pad token
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"  # batched generation needs left padding
    return model, tok
