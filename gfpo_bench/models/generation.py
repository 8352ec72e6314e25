"""Sampling completions from a causal LM: the one `generate` every sampler and policy calls.

For the Qwen2 / Llama family (the embedded default, Qwen2.5, Llama 3) it runs its own decode loop,
`decode_static`, instead of `transformers`' `generate`. It differs from `generate` in cost only:

- each prompt is encoded once and its KV cache is then copied to its n samples (`generate` with
  `num_return_sequences=n` repeats every prompt n times before encoding it);
- the KV cache is preallocated for the whole generation and written in place (a DynamicCache
  concatenates, copying the whole cache for every new token), and the attention mask is kept and
  sliced rather than rebuilt each step;
- finished sequences leave the batch (their keys/values are dropped), so the last long completions
  do not carry the short ones along;
- no per-step generation machinery (logits-processor list, stopping criteria, output dataclasses).

The arithmetic is `transformers`' own: each layer's modules are called as they are (so RMSNorm, LoRA
layers and rotary scaling stay theirs), attention goes through `scaled_dot_product_attention` with
the mask, scale and grouped-query layout `transformers`' sdpa integration would use, and a token is
drawn exactly as `generate` draws it (float32 logits, temperature, top-p as TopPLogitsWarper,
softmax, `torch.multinomial`; argmax when greedy). With the same seed it returns the same tokens as
`model.generate` (tests/test_generation.py checks it on the embedded model, with padding, top-p,
greedy and grouped-query attention).

Where it departs from `generate` on purpose: a hub model's generation_config (repetition penalty,
top_k) is not applied; RL samples from the policy itself, whose log-probs the loss uses. Other
architectures, sliding-window attention and attention implementations other than sdpa use
`model.generate` with those defaults switched off.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# model_type -> decoder stack with the Llama layout (embed_tokens, layers[i].self_attn.{q,k,v,o}_proj,
# input/post_attention_layernorm, mlp, norm, rotary_emb)
STATIC_DECODE_TYPES = {"qwen2", "llama"}
# drop finished rows from the decode batch once at most this share of it is still running
COMPACT_AT = 0.875


def generate(
    model,
    tokenizer,
    prompt_ids: list[list[int]],
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    greedy: bool = False,
) -> list[list[int]]:
    """n completions per prompt (ids cut after eos), in prompt-major order."""
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    if supports_static_decode(model):
        rows = decode_static(model, prompt_ids, n, max_new_tokens, pad, eos, temperature, top_p, greedy)
    else:
        rows = decode_hf(model, prompt_ids, n, max_new_tokens, pad, eos, temperature, top_p, greedy)
    return [cut_at_eos(r, eos, pad) for r in rows]


def cut_at_eos(ids: list[int], eos_id: int, pad_id: int) -> list[int]:
    """Completion ids up to and including the first eos; trailing pads dropped."""
    if eos_id in ids:
        return ids[: ids.index(eos_id) + 1]
    while ids and ids[-1] == pad_id:
        ids = ids[:-1]
    return ids


def base_model(model):
    """The transformers model under a peft wrapper (the same object otherwise)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def supports_static_decode(model) -> bool:
    base = base_model(model)
    cfg = getattr(base, "config", None)
    if cfg is None or cfg.model_type not in STATIC_DECODE_TYPES:
        return False
    if getattr(cfg, "_attn_implementation", None) != "sdpa":
        return False
    layers = base.model.layers
    return all(getattr(layer.self_attn, "sliding_window", None) is None for layer in layers)


@torch.no_grad()
def decode_hf(model, prompt_ids, n, max_new_tokens, pad, eos, temperature, top_p, greedy) -> list[list[int]]:
    """`model.generate` on a left-padded batch; [P*n] rows of new ids (not yet cut at eos)."""
    width = max(len(p) for p in prompt_ids)
    device = next(model.parameters()).device
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids], device=device)
    attn = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids], device=device)
    sampling = (
        dict(do_sample=False)
        if greedy
        else dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0, repetition_penalty=1.0)
    )
    out = model.generate(
        input_ids=input_ids,
        attention_mask=attn,
        max_new_tokens=max_new_tokens,
        num_return_sequences=n,
        pad_token_id=pad,
        eos_token_id=eos,
        use_cache=True,
        **sampling,
    )  # [P*n, width + new]
    return out[:, width:].tolist()


def next_token(logits: Tensor, temperature: float, top_p: float, greedy: bool) -> Tensor:
    """[B, V] logits -> [B] token ids, drawn as transformers' generate draws them."""
    scores = logits.float()
    if greedy:
        return scores.argmax(-1)
    if temperature != 1.0:
        scores = scores / temperature
    if top_p < 1.0:  # TopPLogitsWarper: drop the low tail whose mass is <= 1 - top_p, keep >= 1 token
        sorted_scores, order = torch.sort(scores, descending=False)
        drop = sorted_scores.softmax(-1).cumsum(-1) <= (1 - top_p)
        drop[..., -1:] = False
        scores = scores.masked_fill(drop.scatter(1, order, drop), -float("inf"))
    return torch.multinomial(F.softmax(scores, dim=-1), num_samples=1).squeeze(1)


class StaticKV:
    """Per-layer key/value buffers [B, kv_heads, max_len, head_dim], written in place."""

    def __init__(self, layers: int, batch: int, kv_heads: int, max_len: int, head_dim: int, like: Tensor):
        shape = (batch, kv_heads, max_len, head_dim)
        self.k = [like.new_zeros(shape) for _ in range(layers)]
        self.v = [like.new_zeros(shape) for _ in range(layers)]

    def write(self, layer: int, start: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store k, v [B, kv, T, D] at positions start..start+T; -> all keys/values so far."""
        end = start + k.shape[2]
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def repeat_interleave(self, n: int) -> None:
        self.k = [k.repeat_interleave(n, dim=0) for k in self.k]
        self.v = [v.repeat_interleave(n, dim=0) for v in self.v]

    def select(self, rows: Tensor) -> None:
        """Keep only these batch rows (finished sequences leave the batch)."""
        self.k = [k.index_select(0, rows) for k in self.k]
        self.v = [v.index_select(0, rows) for v in self.v]


def rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def attention(attn, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """sdpa as transformers' sdpa integration calls it. q [B, H, T, D], k/v [B, kv, L, D], mask
    [B, 1, T, L] bool or None (no padding: causal by shape) -> [B, H, T, D]."""
    groups = q.shape[1] // k.shape[1]
    t = q.shape[2]
    if groups > 1 and mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=t > 1, scale=attn.scaling, enable_gqa=True)
    if groups > 1 and t == 1:  # one query token: its heads become the query rows of each kv head
        b, h, _, d = q.shape
        out = F.scaled_dot_product_attention(
            q.reshape(b, h // groups, groups, d), k, v, attn_mask=mask, scale=attn.scaling
        )
        return out.reshape(b, h, 1, d)
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, is_causal=mask is None and t > 1, scale=attn.scaling
    )


def forward_step(base, ids: Tensor, pos: Tensor, mask: Tensor | None, cache: StaticKV, start: int) -> Tensor:
    """One pass of the decoder stack over ids [B, T] at positions pos [B, T], keys/values appended to
    `cache` at `start`; -> float32 logits of the last position [B, V]."""
    stack = base.model
    h = stack.embed_tokens(ids)  # [B, T, H]
    cos, sin = stack.rotary_emb(h, pos)  # [B, T, D] each
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # [B, 1, T, D]
    b, t, _ = h.shape
    for i, layer in enumerate(stack.layers):
        attn = layer.self_attn
        x = layer.input_layernorm(h)
        shape = (b, t, -1, attn.head_dim)
        q = attn.q_proj(x).view(shape).transpose(1, 2)  # [B, H, T, D]
        k = attn.k_proj(x).view(shape).transpose(1, 2)  # [B, kv, T, D]
        v = attn.v_proj(x).view(shape).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = cache.write(i, start, k, v)  # [B, kv, start+T, D]
        o = attention(attn, q, k, v, mask)  # [B, H, T, D]
        h = h + attn.o_proj(o.transpose(1, 2).reshape(b, t, -1).contiguous())
        h = h + layer.mlp(layer.post_attention_layernorm(h))
    return base.lm_head(stack.norm(h[:, -1:]))[:, -1].float()  # [B, V]


@torch.no_grad()
def decode_static(
    model, prompt_ids, n, max_new_tokens, pad, eos, temperature, top_p, greedy
) -> list[list[int]]:
    """[P*n] rows of new ids (pad after eos), prompt-major; see the module docstring."""
    base = base_model(model)
    cfg = base.config
    device = base.lm_head.weight.device
    p, width = len(prompt_ids), max(len(x) for x in prompt_ids)
    ids = torch.tensor([[pad] * (width - len(x)) + x for x in prompt_ids], device=device)  # [P, W]
    real = torch.tensor([[False] * (width - len(x)) + [True] * len(x) for x in prompt_ids], device=device)
    pos = (real.long().cumsum(-1) - 1).clamp_min(0)  # [P, W]: each prompt's own positions from 0
    padded = not bool(real.all())
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    cache = StaticKV(
        len(base.model.layers),
        p,
        cfg.num_key_value_heads,
        width + max_new_tokens,
        head_dim,
        base.lm_head.weight,
    )

    mask = None  # [P, 1, W, W] causal and padding; pad query rows see everything (their output is unused)
    if padded:
        causal = torch.ones(width, width, dtype=torch.bool, device=device).tril()
        mask = (causal & real[:, None, :]) | ~real[:, :, None]
        mask = mask[:, None]
    logits = forward_step(base, ids, pos, mask, cache, 0).repeat_interleave(n, dim=0)  # [B, V]
    cache.repeat_interleave(n)  # one encoding per prompt, n copies of its keys/values
    seen = torch.cat([real, real.new_ones(p, max_new_tokens)], dim=1).repeat_interleave(n, dim=0)  # [B, W+T]
    next_pos = pos[:, -1:].repeat_interleave(n, dim=0)  # [B, 1]
    done = torch.zeros(p * n, dtype=torch.bool, device=device)  # [B]
    rows = torch.arange(p * n, device=device)  # [b]: the rows still in the cache's batch
    out = []
    for step in range(max_new_tokens):
        tok = next_token(logits, temperature, top_p, greedy)
        tok = torch.where(done, torch.full_like(tok, pad), tok)  # finished rows emit pad
        out.append(tok)
        done |= tok == eos
        if step == max_new_tokens - 1 or bool(done.all()):
            break
        alive = (~done[rows]).nonzero().squeeze(1)  # [b'] positions in the cache's batch
        if alive.numel() <= COMPACT_AT * rows.numel():  # drop finished rows from the batch
            rows, next_pos = rows[alive], next_pos[alive]
            cache.select(alive)
        next_pos = next_pos + 1
        end = width + step + 1
        step_mask = seen[rows, None, None, :end] if padded else None  # [b, 1, 1, end]
        step_logits = forward_step(base, tok[rows, None], next_pos, step_mask, cache, width + step)  # [b, V]
        # Finished rows keep a row of zeros: multinomial draws from every row alike (one exponential per
        # entry), so the rows still running get exactly the tokens they would get in the full batch.
        logits = step_logits.new_zeros(p * n, step_logits.shape[-1]).index_copy_(0, rows, step_logits)
    return torch.stack(out, dim=1).tolist()  # [B, T]
