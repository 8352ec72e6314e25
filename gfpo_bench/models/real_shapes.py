"""Configs of real models, written out by hand, to measure at real size with random weights.

No download: the benchmarks (scripts/bench_memory.py, scripts/bench_speed.py) build a random-init
model of the same shape, which costs the same memory and time as the trained one.
"""

from __future__ import annotations

from transformers import Qwen2Config


def qwen25_05b_config(layers: int = 24, vocab: int = 151936, **overrides) -> Qwen2Config:
    """Qwen/Qwen2.5-0.5B's config.json (hidden 896, 14 heads, 2 KV heads, tied embeddings)."""
    fields = dict(
        vocab_size=vocab,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=layers,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=151643,
        eos_token_id=151643,
    )
    return Qwen2Config(**{**fields, **overrides})
