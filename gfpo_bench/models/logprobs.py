"""Token log-probabilities and right-padded batches: the two tensor utilities every box shares."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def pad_right(seqs: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """-> tokens [N, L] long, attention_mask [N, L] bool (True on real tokens)."""
    width = max((len(s) for s in seqs), default=0)
    tokens = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = True
    return tokens, mask


def token_logprobs(model, tokens: Tensor, attention_mask: Tensor) -> Tensor:
    """log p(x_t | x_<t) for every position; position 0 (no context) gets 0.

    tokens [N, L], attention_mask [N, L] -> [N, L] float32. Right padding, so position ids are
    0..L-1 for every row, and the causal mask keeps pads from influencing real tokens.
    """
    logits = model(input_ids=tokens, attention_mask=attention_mask.long()).logits  # [N, L, V]
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)  # [N, L-1, V]
    picked = logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)  # [N, L-1]
    return torch.cat([torch.zeros_like(picked[:, :1]), picked], dim=1) * attention_mask


def completion_nll(logp: Tensor, completion_mask: Tensor) -> Tensor:
    """Token-level mean NLL over all completion tokens of the batch (not per sequence)."""
    n = completion_mask.sum().clamp_min(1)
    return -(logp * completion_mask).sum() / n
