"""The embedded default model: a ~1M-parameter Qwen2-architecture causal LM, char-level.

Built from a transformers config (no weights downloaded), warm-started by supervised fine-tuning
on the task's reference solutions, saved with save_pretrained and reloaded through the same
`from_pretrained` path as any hub model. The warm start is deliberately short so the model stays
imperfect (mistakes at specific steps), which is what RL then has to fix. The result is cached
under a key that hashes everything it depends on, so the second run starts in a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from gfpo_bench.models.sft import SFTConfig, supervised_finetune
from gfpo_bench.models.tokenizer import build_char_tokenizer
from gfpo_bench.tasks.base import Task

log = logging.getLogger(__name__)


def build_tiny_model(vocab_size: int, hidden: int, layers: int, heads: int, max_len: int, seed: int):
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_len,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    return Qwen2ForCausalLM(cfg)


def ensure_tiny(
    task: Task,
    cache_dir: str,
    hidden: int = 128,
    layers: int = 4,
    heads: int = 4,
    max_len: int = 256,
    seed: int = 0,
    sft: SFTConfig | None = None,
    task_key: str = "",
) -> Path:
    """Path of a saved, SFT-warm-started tiny model for `task`; trained now if not cached."""
    sft = sft or SFTConfig()
    spec = dict(
        hidden=hidden, layers=layers, heads=heads, max_len=max_len, seed=seed, sft=vars(sft), task=task_key
    )
    key = hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]
    out = Path(cache_dir).expanduser() / f"tiny-{task.name}-{key}"
    if (out / "config.json").exists():
        log.info("tiny model: using cached warm start %s", out)
        return out
    tok = build_char_tokenizer()
    model = build_tiny_model(len(tok), hidden, layers, heads, max_len, seed)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny model: %.2fM params; SFT warm start for %d steps -> %s", n_params / 1e6, sft.steps, out)
    supervised_finetune(model, tok, task, sft, seed=seed)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "warm_start.json").write_text(json.dumps(spec, indent=2, default=str))
    tmp.rename(out)  # atomic: a half-written cache is never mistaken for a finished one
    return out
