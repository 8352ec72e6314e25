"""token_logprobs: the chunked path matches the exact one (values and gradients) and holds no
[N, L, V] tensor; the embedded default keeps the exact path bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import Qwen2Config, Qwen2ForCausalLM

from gfpo_bench.models.logprobs import LOGITS_BUDGET, full_logprobs, token_logprobs

VOCAB = 3001  # large next to the hidden size (48), like a real vocabulary; odd, so chunks do not divide it


def small_qwen(vocab: int = VOCAB, seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=vocab,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(cfg)


def batch(n: int = 4, width: int = 23, vocab: int = VOCAB, seed: int = 1):
    """tokens [n, width] with right padding: row 1 ends at 15, the last row at 4 (a short row)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab, (n, width), generator=g)
    mask = torch.ones(n, width, dtype=torch.bool)
    mask[1, 15:] = False
    mask[-1, 4:] = False
    tokens[~mask] = 0
    return tokens, mask


def values_and_grads(model, tokens, mask, budget):
    model.zero_grad(set_to_none=True)
    logp = token_logprobs(model, tokens, mask, budget)
    weights = torch.linspace(-1.0, 2.0, logp.numel()).view_as(logp)  # a loss that weighs every position
    (logp * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logp.detach(), grads


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_matches_full_values_and_gradients(chunk):
    model = small_qwen()
    tokens, mask = batch()
    full, g_full = values_and_grads(model, tokens, mask, budget=None)
    part, g_part = values_and_grads(model, tokens, mask, budget=chunk * VOCAB)  # chunks of `chunk` positions
    assert torch.allclose(part, full, atol=1e-5, rtol=0)
    assert (part[~mask] == 0).all() and (part[:, 0] == 0).all()
    assert g_full.keys() == g_part.keys() and len(g_full) == len(list(model.parameters()))
    for name in g_full:
        assert torch.allclose(g_part[name], g_full[name], atol=1e-5, rtol=0), name


def test_chunked_matches_full_through_a_peft_model():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(small_qwen(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():  # non-zero adapters, so their gradients are not trivially equal
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.02)
    tokens, mask = batch()
    full, g_full = values_and_grads(model, tokens, mask, budget=None)
    part, g_part = values_and_grads(model, tokens, mask, budget=5 * VOCAB)
    assert torch.allclose(part, full, atol=1e-5, rtol=0)
    assert g_full and all("lora_" in n for n in g_full)
    for name in g_full:
        assert torch.allclose(g_part[name], g_full[name], atol=1e-5, rtol=0), name


def largest_saved_with_vocab_dim(model, tokens, mask, budget) -> int:
    """numel of the largest tensor autograd keeps for backward that has a vocabulary-sized dim and
    is not a parameter (the head's weight [V, H] is kept either way)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    sizes = [0]

    def pack(t):
        if VOCAB in t.shape and t.untyped_storage().data_ptr() not in params:
            sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logp = token_logprobs(model, tokens, mask, budget)
    logp.sum().backward()
    return max(sizes)


def test_chunked_path_keeps_no_tensor_of_size_n_l_v():
    model = small_qwen()
    budget = 8 * VOCAB  # 8 positions per chunk
    small = largest_saved_with_vocab_dim(model, *batch(n=2, width=16), budget)
    large = largest_saved_with_vocab_dim(model, *batch(n=8, width=40), budget)
    full = largest_saved_with_vocab_dim(model, *batch(n=8, width=40), None)
    assert full >= 8 * 39 * VOCAB  # the exact path keeps the whole [N, L-1, V] (so the probe sees it)
    assert small == 0 and large == 0  # chunked: the chunk's logits are recomputed in backward, not kept


def test_chunked_path_frees_logits_in_forward():
    """The largest tensor alive in the chunked forward is O(chunk * V): measured by the largest
    tensor any op creates with the vocabulary as its last dim (forward mode hooks on the head)."""
    model = small_qwen()
    seen = [0]
    hook = model.lm_head.register_forward_hook(lambda m, a, out: seen.append(out.numel()))
    tokens, mask = batch(n=8, width=40)
    token_logprobs(model, tokens, mask, budget=8 * VOCAB).sum().backward()  # backward recomputes chunks
    hook.remove()
    assert max(seen) <= 8 * VOCAB


def test_default_budget_keeps_the_exact_path_bit_for_bit():
    """The embedded default (V ~ 105) stays under the budget: same numbers as the implementation
    before the chunked path (full logits, float32 log_softmax, gather), bit for bit."""
    from gfpo_bench.models.tiny import build_tiny_model
    from gfpo_bench.models.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()
    model = build_tiny_model(len(tok), 128, 4, 4, 256, seed=0)
    tokens, mask = batch(n=64, width=150, vocab=len(tok))
    assert 64 * 149 * len(tok) <= LOGITS_BUDGET

    def before(model, tokens, attention_mask):  # the implementation this path must equal
        logits = model(input_ids=tokens, attention_mask=attention_mask.long()).logits
        logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
        picked = logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)
        return torch.cat([torch.zeros_like(picked[:, :1]), picked], dim=1) * attention_mask

    old = before(model, tokens, mask)
    new = token_logprobs(model, tokens, mask)
    assert torch.equal(old, new)
    old.sum().backward()
    g_old = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    new.sum().backward()
    assert all(torch.equal(a, p.grad) for a, p in zip(g_old, model.parameters()))


def test_a_head_that_is_not_a_plain_projection_falls_back_to_full_logits():
    class Scaled(Qwen2ForCausalLM):  # like logit soft-capping / scaling models: logits != lm_head(h)
        def forward(self, *a, **k):
            out = super().forward(*a, **k)
            out.logits = out.logits * 0.5
            return out

    torch.manual_seed(0)
    model = Scaled(small_qwen().config)
    tokens, mask = batch()
    assert torch.equal(token_logprobs(model, tokens, mask, 4 * VOCAB), full_logprobs(model, tokens, mask))


def test_gradient_checkpointing_gives_the_same_gradients():
    model = small_qwen().train()
    tokens, mask = batch()
    base, g_base = values_and_grads(model, tokens, mask, budget=4 * VOCAB)
    model.activation_checkpointing_enable()
    ckpt, g_ckpt = values_and_grads(model, tokens, mask, budget=4 * VOCAB)
    assert torch.allclose(ckpt, base, atol=1e-6, rtol=0)
    for name in g_base:
        assert torch.allclose(g_ckpt[name], g_base[name], atol=1e-6, rtol=0), name
