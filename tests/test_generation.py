"""The static-cache decode loop draws exactly the tokens transformers' generate draws."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from gfpo_bench.models.generation import decode_hf, decode_static, generate, supports_static_decode
from gfpo_bench.models.tokenizer import build_char_tokenizer

TOK = build_char_tokenizer()
PROMPTS = ["12+7=", "3*(4+5)=?\n", "7-2", "100 + 23 + 4 ="]  # different lengths: left padding


def tiny(kind: str, heads: int = 4, kv_heads: int = 4):
    torch.manual_seed(0)
    common = dict(
        vocab_size=len(TOK),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=128,
        pad_token_id=TOK.pad_token_id,
        eos_token_id=TOK.eos_token_id,
    )
    model = (
        Qwen2ForCausalLM(Qwen2Config(**common))
        if kind == "qwen2"
        else LlamaForCausalLM(LlamaConfig(**common))
    )
    return model.eval()


def ids(prompts):
    return [TOK(p, add_special_tokens=False)["input_ids"] for p in prompts]


def both(model, prompts, n, max_new, temperature=1.0, top_p=1.0, greedy=False, seed=0):
    args = (model, ids(prompts), n, max_new, TOK.pad_token_id, TOK.eos_token_id, temperature, top_p, greedy)
    torch.manual_seed(seed)
    ours = decode_static(*args)
    torch.manual_seed(seed)
    theirs = decode_hf(*args)
    return ours, theirs


def trim(rows):  # generate stops when every row is done: compare up to each row's eos
    eos, pad = TOK.eos_token_id, TOK.pad_token_id
    return [r[: r.index(eos) + 1] if eos in r else [t for t in r if t != pad] for r in rows]


@pytest.mark.parametrize(
    "kind, heads, kv_heads", [("qwen2", 4, 4), ("qwen2", 4, 2), ("llama", 4, 4), ("llama", 4, 1)]
)
@pytest.mark.parametrize(
    "sampling",
    [dict(), dict(temperature=0.7), dict(top_p=0.9), dict(greedy=True)],
    ids=["T=1", "T=0.7", "top_p=0.9", "greedy"],
)
def test_same_tokens_as_transformers_generate(kind, heads, kv_heads, sampling):
    model = tiny(kind, heads, kv_heads)
    assert supports_static_decode(model)
    n = 1 if sampling.get("greedy") else 3  # generate allows one greedy sequence per prompt
    for seed in range(2):
        ours, theirs = both(model, PROMPTS, n=n, max_new=16, seed=seed, **sampling)
        assert trim(ours) == trim(theirs)


def test_prompts_without_padding_take_the_unmasked_path():
    model = tiny("qwen2", 4, 2)
    ours, theirs = both(model, ["1+2=", "3+4="], n=4, max_new=16)
    assert trim(ours) == trim(theirs)


def test_embedded_warm_start_samples_identically(run_cfg):
    """The trained default model (peaked distributions, early eos) through the public `generate`."""
    import json

    import hydra
    from omegaconf import OmegaConf

    from gfpo_bench.models.factory import build_model

    cfg = run_cfg()
    task = hydra.utils.instantiate(cfg.task)
    key = json.dumps(OmegaConf.to_container(cfg.task, resolve=True), sort_keys=True)
    model, tok, _ = build_model(cfg.model, task, key)  # the session's default warm start
    model.eval()
    prompts = [
        tok(f"{a}+{b}=", add_special_tokens=False)["input_ids"] for a, b in [(17, 25), (3, 999), (48, 4)]
    ]
    eos = tok.eos_token_id
    for seed in range(3):
        torch.manual_seed(seed)
        ours = generate(model, tok, prompts, 8, 1.0, 1.0, 48)
        torch.manual_seed(seed)
        theirs = decode_hf(model, prompts, 8, 48, tok.pad_token_id, eos, 1.0, 1.0, False)
        assert ours == [r[: r.index(eos) + 1] if eos in r else r for r in theirs]


def test_other_attention_implementations_fall_back_to_generate():
    model = tiny("qwen2")
    model.config._attn_implementation = "eager"
    assert not supports_static_decode(model)
    out = generate(model, TOK, ids(PROMPTS[:2]), 2, 1.0, 1.0, 8)
    assert len(out) == 4 and all(len(r) <= 8 for r in out)
