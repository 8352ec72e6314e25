"""Peak memory of one pairwise-loss step at Qwen2.5-0.5B's dimensions, on CPU: full log-softmax
log-probs ("before") against the chunked path of gfpo_bench/models/logprobs.py ("after").

    python scripts/bench_memory.py                                # full size: minutes per variant
    python scripts/bench_memory.py --layers 2 --seq-len 128      # a quick look
    python scripts/bench_memory.py --seq-len 256 --gc-only       # where "before" fits in 24 GiB

A random-init Qwen2ForCausalLM with Qwen2.5-0.5B's config, written out here (no download): vocab
151,936, hidden 896, intermediate 4,864, 24 layers, 14 heads, 2 KV heads, tied embeddings, rope
theta 1e6, float32. One step of the project's loss path (`PairwiseRLModule.signal_loss`: policy
log-probs with grad, the frozen reference copy's log-probs without, `PairwiseLoss`, backward) on
`--pairs` pairs of distinct `--seq-len`-token sequences. Each variant runs in its own subprocess
under an address-space limit (RLIMIT_AS), so one variant's memory never colours another's and a
variant that needs more than the machine has reports "out of memory" instead of taking the machine
down. Peak RSS is the child's own ru_maxrss; "step extra" is peak RSS minus the RSS once the model
and its reference copy are built (what the loss step itself adds).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

GIB = 2**30
VARIANTS = [  # (label, log-prob path, gradient checkpointing)
    ("full log_softmax (before)", "before", False),
    ("chunked (after)", "after", False),
    ("full log_softmax (before), grad ckpt", "before", True),
    ("chunked (after), grad ckpt", "after", True),
]


def old_token_logprobs(model, tokens, attention_mask, budget=None):
    """gfpo_bench/models/logprobs.py before the chunked path, verbatim: a full float32 log_softmax."""
    import torch
    import torch.nn.functional as F

    logits = model(input_ids=tokens, attention_mask=attention_mask.long()).logits  # [N, L, V]
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)  # [N, L-1, V]
    picked = logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)  # [N, L-1]
    return torch.cat([torch.zeros_like(picked[:, :1]), picked], dim=1) * attention_mask


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def child(args) -> dict:
    """One variant, in this process: build, one loss forward + backward, report memory."""
    limit = int(args.mem_limit_gib * GIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    import gfpo_bench.module as module_mod
    from gfpo_bench.loss import PairwiseLoss
    from gfpo_bench.models.logprobs import LOGITS_BUDGET
    from gfpo_bench.module import PairwiseRLModule
    from gfpo_bench.types import Pairs, Rollouts

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = {"oom": False}
    try:
        from transformers import Qwen2ForCausalLM

        from gfpo_bench.models.real_shapes import qwen25_05b_config

        model = Qwen2ForCausalLM(qwen25_05b_config(args.layers, args.vocab))
        if args.gc:
            model.activation_checkpointing_enable()
        if args.variant == "before":
            module_mod.token_logprobs = old_token_logprobs  # what module.signal_loss calls
        module = PairwiseRLModule(
            model, None, None, None, None, None, PairwiseLoss(beta=0.1, positive_lambda=50.0), None,
            logits_budget=LOGITS_BUDGET,
        )  # fmt: skip
        n, width, prompt = 2 * args.pairs, args.seq_len, args.seq_len // 4
        tokens = torch.randint(0, args.vocab, (n, width))  # [N, L] distinct sequences, no padding
        comp = torch.zeros(n, width, dtype=torch.bool)
        comp[:, prompt:] = True
        rollouts = Rollouts(
            [], torch.zeros(n, dtype=torch.long), tokens, torch.ones(n, width, dtype=torch.bool), comp,
            torch.full((n,), prompt), [""] * n, [[] for _ in range(n)],
        )  # fmt: skip
        even, m = torch.arange(0, n, 2), args.pairs
        pairs = Pairs(
            even, even + 1, torch.full((m,), prompt), torch.zeros(m, dtype=torch.long), torch.zeros(m)
        )
        out["rss_built"] = rss_bytes()
        t0 = time.perf_counter()
        loss = module.signal_loss(rollouts, pairs, module.schedule.stages[0].strategy).loss
        loss.backward()
        out["seconds"] = time.perf_counter() - t0
    except (MemoryError, RuntimeError) as e:
        if not isinstance(e, MemoryError) and "alloc" not in str(e).lower():
            raise
        out["oom"] = True
    out["peak_rss"] = peak_rss_bytes()
    return out


def run_variant(args, variant: str, gc: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, *(["--gc"] if gc else [])]
    for flag in ("seq_len", "pairs", "layers", "vocab", "threads", "mem_limit_gib"):
        cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    if proc.returncode < 0:  # killed (the kernel's OOM killer, if the limit was above free memory)
        return {"oom": True, "peak_rss": None, "killed": -proc.returncode}
    raise SystemExit(f"variant {variant} failed:\n{proc.stderr[-3000:]}")


def gib(x) -> str:
    return "-" if x is None else f"{x / GIB:.2f} GiB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-len", type=int, default=512, help="tokens per sequence (default 512)")
    p.add_argument("--pairs", type=int, default=8, help="pairs; 2 distinct sequences each (default 8)")
    p.add_argument("--layers", type=int, default=24, help="decoder layers (Qwen2.5-0.5B: 24)")
    p.add_argument("--vocab", type=int, default=151936, help="vocabulary size (Qwen2.5: 151,936)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--mem-limit-gib", type=float, default=None, help="address-space limit per variant")
    p.add_argument("--only", choices=["before", "after"], default=None, help="run one path only")
    p.add_argument("--no-gc", action="store_true", help="skip the gradient-checkpointing variants")
    p.add_argument("--gc-only", action="store_true", help="only the gradient-checkpointing variants")
    p.add_argument("--child", choices=["before", "after"], help=argparse.SUPPRESS, dest="variant")
    p.add_argument("--gc", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mem_limit_gib is None:  # what is free now, minus room for the rest of the machine
        with open("/proc/meminfo") as f:
            avail = next(int(x.split()[1]) * 1024 for x in f if x.startswith("MemAvailable:"))
        args.mem_limit_gib = round(max(1.0, avail / GIB - 2.0), 1)
    if args.variant:
        print(json.dumps(child(args)), flush=True)
        return

    n = 2 * args.pairs
    print(
        f"Qwen2.5-0.5B config, random init, float32: vocab {args.vocab}, hidden 896, {args.layers} layers; "
        f"{args.pairs} pairs = {n} sequences x {args.seq_len} tokens; {args.threads} threads; "
        f"each variant in its own process, address-space limit {args.mem_limit_gib} GiB"
    )
    print(f"full logits [N, L, V] float32: {gib(n * args.seq_len * args.vocab * 4)}\n")
    print(f"{'variant':40s} {'peak RSS':>18s} {'model built':>12s} {'step extra':>12s} {'time':>8s}")
    results = {}
    for label, variant, gc in VARIANTS:
        if (args.only and variant != args.only) or (gc and args.no_gc) or (not gc and args.gc_only):
            continue
        r = run_variant(args, variant, gc)
        results[(variant, gc)] = r
        if r["oom"]:
            peak = f"> {args.mem_limit_gib:g} GiB (OOM)"
            extra, secs = "-", "-"
        else:
            peak, extra, secs = (
                gib(r["peak_rss"]),
                gib(r["peak_rss"] - r["rss_built"]),
                f"{r['seconds']:.0f} s",
            )
        print(f"{label:40s} {peak:>18s} {gib(r.get('rss_built')):>12s} {extra:>12s} {secs:>8s}", flush=True)
    print()
    for gc, name in ((False, "without"), (True, "with")):
        b, a = results.get(("before", gc)), results.get(("after", gc))
        if not (a and b) or a["oom"]:
            continue
        if b["oom"]:
            print(
                f"{name} gradient checkpointing: before > {args.mem_limit_gib:g} GiB (out of memory), "
                f"after {gib(a['peak_rss'])}: ratio > {args.mem_limit_gib * GIB / a['peak_rss']:.1f}x"
            )
            continue
        extra_b, extra_a = b["peak_rss"] - b["rss_built"], a["peak_rss"] - a["rss_built"]
        print(
            f"{name} gradient checkpointing: peak RSS before/after = {b['peak_rss'] / a['peak_rss']:.2f}x; "
            f"step extra before/after = {extra_b / extra_a:.2f}x"
        )


if __name__ == "__main__":
    main()
