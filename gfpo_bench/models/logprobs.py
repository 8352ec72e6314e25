"""Token log-probabilities and right-padded batches: the two tensor utilities every box shares.

`token_logprobs` has two paths that agree to float32 rounding (tests/test_logprobs.py):
- exact: one full float32 `log_softmax` over the logits [N, L, V], then a gather. Used when the
  logits hold at most `budget` elements, which covers the embedded default (V ~ 105), so its
  numbers (and its SFT warm start) are bit-for-bit what they always were.
- chunked: above the budget (a real vocabulary: Qwen's V = 151,936 makes [64, 1024, V] float32
  about 40 GB), the backbone's last hidden state [N, L, H] is taken once, and the head runs on
  chunks of at most `budget // V` real positions: logits [C, V] in float32, target logit minus
  `logsumexp`. Each chunk runs under `torch.utils.checkpoint`, so backward recomputes the chunk's
  logits instead of keeping them: peak extra memory O(budget), not O(N·L·V). The same idea as
  Liger-Kernel's fused linear cross-entropy and torchtune's chunked output loss, in plain torch.
Padding positions are skipped in the chunked path (their log-prob is 0 either way).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

log = logging.getLogger(__name__)

# float32 logit elements materialised at once: 2**24 = 64 MB (the embedded default's largest batch
# is ~1.5M elements, far below; at V = 151,936 a chunk is 110 positions)
LOGITS_BUDGET = 2**24


def pad_right(seqs: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """-> tokens [N, L] long, attention_mask [N, L] bool (True on real tokens)."""
    width = max((len(s) for s in seqs), default=0)
    tokens = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = True
    return tokens, mask


def token_logprobs(
    model, tokens: Tensor, attention_mask: Tensor, budget: int | None = LOGITS_BUDGET
) -> Tensor:
    """log p(x_t | x_<t) for every position; position 0 (no context) gets 0.

    tokens [N, L], attention_mask [N, L] -> [N, L] float32. Right padding, so position ids are
    0..L-1 for every row, and the causal mask keeps pads from influencing real tokens.
    `budget`: most float32 logit elements held at once (see the module docstring); None: always exact.
    """
    n, width = tokens.shape
    vocab = model.get_output_embeddings().weight.shape[0]
    if budget is None or n * max(width - 1, 0) * vocab <= budget:
        return full_logprobs(model, tokens, attention_mask)
    return chunked_logprobs(model, tokens, attention_mask, max(1, budget // vocab))


def full_logprobs(model, tokens: Tensor, attention_mask: Tensor) -> Tensor:
    """The exact path: full logits [N, L, V] and one float32 log_softmax."""
    logits = model(
        input_ids=tokens, attention_mask=attention_mask.long(), use_cache=False
    ).logits  # [N, L, V]
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)  # [N, L-1, V]
    picked = logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)  # [N, L-1]
    return torch.cat([torch.zeros_like(picked[:, :1]), picked], dim=1) * attention_mask


def chunked_logprobs(model, tokens: Tensor, attention_mask: Tensor, chunk: int) -> Tensor:
    """The bounded path: last hidden state once, then the head on `chunk` positions at a time."""
    head = model.get_output_embeddings()
    hidden = last_hidden_state(model, tokens, attention_mask)  # [N, L, H], or None
    if hidden is None:
        return full_logprobs(model, tokens, attention_mask)
    keep = attention_mask[:, 1:].bool()  # [N, L-1] positions whose token is real
    h = hidden[:, :-1][keep]  # [P, H] the state that predicts each real token
    target = tokens[:, 1:][keep]  # [P]
    parts = []
    for s in range(0, h.shape[0], chunk):
        hc, tc = h[s : s + chunk], target[s : s + chunk]
        if torch.is_grad_enabled() and hc.requires_grad:
            parts.append(checkpoint(_chunk_logprobs, head, hc, tc, use_reentrant=False))
        else:
            parts.append(_chunk_logprobs(head, hc, tc))
    picked = tokens.new_zeros(keep.shape, dtype=torch.float32)  # [N, L-1]
    if parts:
        picked = picked.masked_scatter(keep, torch.cat(parts))
    return torch.cat([torch.zeros_like(picked[:, :1]), picked], dim=1)


def _chunk_logprobs(head, h: Tensor, target: Tensor) -> Tensor:
    """h [C, H], target [C] -> [C]: log_softmax(head(h))[target] without a [C, V] log_softmax copy."""
    logits = head(h).float()  # [C, V]
    return logits.gather(-1, target[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def last_hidden_state(model, tokens: Tensor, attention_mask: Tensor) -> Tensor | None:
    """The input of the output head [N, L, H], from a forward that computes logits for one position.

    A hook on the backbone (`model.model` for Qwen2/Llama, also inside a peft wrapper) catches its
    output. The one position's logits check that the head is a plain projection of that state
    (models that scale or soft-cap logits after it are not): if not, None, and the caller falls
    back to the exact path.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft: the HF model
    backbone = getattr(base, getattr(base, "base_model_prefix", ""), None)
    if not isinstance(backbone, torch.nn.Module) or backbone is base:
        _warn_fallback(model, "no backbone module")
        return None
    caught: list[Tensor] = []
    hook = backbone.register_forward_hook(lambda mod, args, out: caught.append(out[0]))
    try:
        out = model(input_ids=tokens, attention_mask=attention_mask.long(), use_cache=False, logits_to_keep=1)
    except TypeError:  # a remote-code model without `logits_to_keep`
        _warn_fallback(model, "no logits_to_keep argument")
        return None
    finally:
        hook.remove()
    if len(caught) != 1 or caught[0].shape[:2] != tokens.shape:
        _warn_fallback(model, "backbone output not caught")
        return None
    hidden = caught[0]  # [N, L, H]
    with torch.no_grad():
        mine = model.get_output_embeddings()(hidden[:, -1:]).float()  # [N, 1, V]
        if not torch.allclose(mine, out.logits[:, -1:].float(), rtol=1e-4, atol=1e-4):
            _warn_fallback(model, "its logits are not head(hidden state)")
            return None
    return hidden


_warned: set[str] = set()


def _warn_fallback(model, why: str) -> None:
    name = type(model).__name__
    if name not in _warned:
        _warned.add(name)
        log.warning("token_logprobs: chunked path unavailable for %s (%s); using full logits", name, why)


def completion_nll(logp: Tensor, completion_mask: Tensor) -> Tensor:
    """Token-level mean NLL over all completion tokens of the batch (not per sequence)."""
    n = completion_mask.sum().clamp_min(1)
    return -(logp * completion_mask).sum() / n
