"""The LightningModule: wires the boxes of the one loop together and nothing else.

    training_step:  sample -> reward -> dynamic sampling (DAPO) -> signal -> loss (+ sft_mix.py) -> finish

The stage's method (a pairing strategy, or GRPO: grpo.py) turns the batch into a training signal:
pairs, read by the shared pairwise loss (loss.py), or group-relative advantages, read by GRPO's own
policy-gradient loss. Each unique sequence the signal uses is scored by one forward pass per step
(the policy, and the frozen reference when the method needs one), never once per pair. The reference
is a frozen copy of the starting model, or, for LoRA (peft), the model with its adapters disabled
(its checkpoints hold the adapters only). A batch with no signal (and no supervised term), or a
non-finite loss, skips the optimizer step; both are counted and logged and the run goes on.

The step's bookkeeping (tokens, skips, logged metrics) is the StepLedger's (ledger.py), on one
process and under DDP alike: `finish_step` closes it once per step and logs what it returns.

Exact resume: besides weights and optimizer, checkpoints carry `run_state()` (the sampler's, reward's
and schedule's `state_dict`s, the global RNGs sampling draws from) and the ledger's counters; the
callbacks and the datamodule put their own state there too: a resumed run goes on as if never stopped.

Distributed (DDP; FSDP takes the same path): each rank samples and scores its own share of the
step's prompts (datamodule.py) and computes its own loss; DDP averages the gradients. The ledger's
close is an all-gather: tokens are summed, so `tokens_generated`, the token budget and the schedule
are global and the same on every rank (the stop decision must be); metrics are reduced (counts summed,
rates averaged over the ranks that report them, weighted by prompts, or by pairs for pair statistics).
Lightning cannot skip a step under DDP (every rank must join the gradient all-reduce): a rank with
nothing to learn returns a zero loss that touches every trainable parameter, and the skip is counted;
so under DDP a step where every rank skips steps the optimizer with a zero gradient (Adam's moments
decay). Rank 0 draws from the global RNGs as a single process would; ranks > 0 reseed theirs from
(seed, rank). A resumed DDP run continues with rank 0's state on every rank, not bit-exactly.
"""

from __future__ import annotations

import copy
import logging
import random

import lightning as L
import torch
from torch import Tensor

from gfpo_bench.analytics import group_metrics
from gfpo_bench.config_schema import require
from gfpo_bench.distributed import (
    PAIR_PREFIXES,
    PAIR_WEIGHTED,
    global_rng_state,
    seed_rank,
    set_global_rng_state,
    weights_sha256,
)
from gfpo_bench.errors import ConfigError
from gfpo_bench.ledger import StepLedger
from gfpo_bench.loss import PairwiseLoss
from gfpo_bench.models.logprobs import LOGITS_BUDGET, token_logprobs
from gfpo_bench.models.lora import is_peft, reference_mode, trainable_keys
from gfpo_bench.pairing.dapo import dynamic_sampling
from gfpo_bench.rewards.reward import Reward
from gfpo_bench.sampling.base import Sampler
from gfpo_bench.schedule import PairingSchedule
from gfpo_bench.sft_mix import SupervisedMix
from gfpo_bench.tasks.base import Task
from gfpo_bench.types import Problem, RewardOutput, Rollouts

log = logging.getLogger(__name__)


class PairwiseRLModule(L.LightningModule):
    """Built from the `module` node of conf/config.yaml (`_partial_`); train.py passes the boxes."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        task: Task,
        sampler: Sampler,
        reward: Reward,
        schedule: PairingSchedule,
        loss: PairwiseLoss,
        optimizer,  # functools.partial(torch.optim.X, lr=...) from Hydra (_partial_: true)
        dynamic_max_rounds: int = 3,
        max_tokens: int | None = None,
        seed: int = 0,
        init_optimizer_state: dict | None = None,  # optimizer moments of a warm-start run (init_optimizer)
        logits_budget: int | None = LOGITS_BUDGET,  # float32 logits held at once (models/logprobs.py)
        sft_mix: SupervisedMix | None = None,  # SFT + RL mixed: a supervised term on references
    ) -> None:
        super().__init__()
        require("module.dynamic_max_rounds", dynamic_max_rounds)
        self.init_optimizer_state = init_optimizer_state
        self.model, self.tok, self.task = model, tokenizer, task
        self.model.train()  # from_pretrained returns eval mode; dropout (if any) follows Lightning's mode
        self.sampler, self.reward, self.schedule, self.loss_fn = sampler, reward, schedule, loss
        self.optimizer_factory = optimizer
        self.logits_budget, self.sft_mix = logits_budget, sft_mix or SupervisedMix()  # sft_mix: off at 0
        self.lora = is_peft(model)
        self.strict_loading = not self.lora  # LoRA checkpoints hold the adapters only
        # A plain list keeps the frozen reference out of parameters(), the optimizer and checkpoints.
        self._ref: list[torch.nn.Module] = []
        if schedule.needs_reference(loss) and not self.lora:  # LoRA: the reference is adapters off
            ref = copy.deepcopy(model).eval()
            ref.requires_grad_(False)
            self._ref.append(ref)
        self.dynamic_max_rounds, self.max_tokens = dynamic_max_rounds, max_tokens
        self.rng = random.Random(seed)  # pairing tie-breaks and DAPO's refill prompts
        self.seed = seed
        self.ledger = StepLedger()  # tokens, skips and the step's metrics (checkpointed counters)
        self.ddp_report: dict | None = None  # DDP: per-rank tokens and weight hashes (summary.json)
        self._pending_rng: dict | None = None  # global RNG states of a checkpoint, set at train start
        self.last_pairs: tuple | None = None  # the batch just trained on (callbacks/pair_table.py)

    @property
    def tokens_generated(self) -> int:  # all ranks', up to the last finished step
        return self.ledger.tokens_generated

    # --- the loop -------------------------------------------------------------------------------
    def training_step(self, problems: list[Problem], batch_idx: int) -> Tensor | None:
        stage, method = self.schedule.at(self.global_step, self.tokens_generated, self.max_tokens)
        rollouts = self.sample(problems)
        rewards = self.reward(self.task, rollouts)
        if method.dynamic_sampling:  # DAPO
            rollouts, rewards = self.filter_groups(rollouts, rewards, method, want=len(problems))
        signal = method(rollouts, rewards, self.rng)  # Pairs, or GRPO's GroupAdvantages
        out = self.signal_loss(rollouts, signal, method) if signal.has_signal else None
        out = self.sft_mix.mix(self, problems, out)  # + the supervised term on references, when on
        return self.finish_step(rollouts, rewards, signal, method, out, stage)

    # --- boxes ----------------------------------------------------------------------------------
    def sample(self, problems: list[Problem]) -> Rollouts:
        """sampler.k paths per problem from the current policy (in eval mode); counts their tokens."""
        was_training = self.model.training
        self.model.eval()
        try:
            rollouts = self.sampler.sample(self.model, self.task, problems)
        finally:
            self.model.train(was_training)
        self.ledger.count_tokens(rollouts.generated_tokens)
        return rollouts

    def sample_and_reward(self, problems: list[Problem]) -> tuple[Rollouts, RewardOutput]:
        return (rollouts := self.sample(problems)), self.reward(self.task, rollouts)

    def filter_groups(self, rollouts: Rollouts, rewards: RewardOutput, strategy, want: int):
        """DAPO's dynamic sampling (pairing/dapo.py), refilled from the datamodule's training pool."""
        data = self._trainer.datamodule if self._trainer is not None else None
        pool = data.train_pool if data is not None else []
        rollouts, rewards, kept = dynamic_sampling(
            rollouts, rewards, strategy, want, pool, self.sample_and_reward,
            self.dynamic_max_rounds, self.rng, self.tok.pad_token_id,
        )  # fmt: skip
        self.ledger.record({"train/dynamic_groups_kept": kept})
        return rollouts, rewards

    def signal_loss(self, rollouts: Rollouts, signal, method):
        """One forward pass over the unique sequences the signal uses, then the method's loss."""
        used = signal.paths()  # [U]
        remap = torch.full((rollouts.n,), -1, dtype=torch.long)
        remap[used] = torch.arange(used.numel())
        width = int(rollouts.attention_mask[used].sum(-1).max())
        tokens = rollouts.tokens[used, :width].to(self.device)  # [U, W]
        attn = rollouts.attention_mask[used, :width].to(self.device)  # [U, W]
        comp = rollouts.completion_mask[used, :width].to(self.device)  # [U, W]
        logp = token_logprobs(self.model, tokens, attn, self.logits_budget)  # [U, W]
        ref = self.reference_logprobs(tokens, attn) if method.needs_reference(self.loss_fn) else None
        local = signal.local(remap, self.device)
        if method.objective is not None:  # GRPO: its own policy-gradient loss on the advantages
            return method.objective(logp, ref, comp, local.advantages)
        return self.loss_fn(logp, ref, comp, local, method.sft_coef)  # the shared pairwise loss

    def finish_step(self, rollouts, rewards, signal, method, out, stage: int) -> Tensor | None:
        """Log the step once (the ledger's close), and hand Lightning its loss, or None to skip the
        optimizer step when there was nothing to learn from or the loss is not finite; skips are
        counted and the run goes on. Under DDP every rank returns a loss (see the module docstring)."""
        self.record_batch(rollouts, rewards, signal, method, stage)
        self.last_pairs = (rollouts, rewards, signal, out)
        skip = "skipped" if out is None else None if torch.isfinite(out.loss) else "nonfinite"
        if skip:
            self.ledger.skip(skip)
            if skip == "nonfinite":
                log.warning("non-finite loss at step %d: skipped", self.global_step)
        else:
            self.ledger.record(out.metrics())
            self.log("loss", out.loss.detach(), prog_bar=True, logger=False)
        self.log_dict(self.ledger.close(self.all_gather_step if self.world > 1 else None), batch_size=1)
        if skip is None:
            return out.loss
        return self.zero_loss() if self.world > 1 else None

    @torch.no_grad()
    def reference_logprobs(self, tokens: Tensor, attn: Tensor) -> Tensor:
        """tokens [U, W], attn [U, W] -> [U, W] log-probs under the frozen reference."""
        if self.lora:
            with reference_mode(self.model):
                return token_logprobs(self.model, tokens, attn, self.logits_budget)
        return token_logprobs(self._ref[0], tokens, attn, self.logits_budget)

    # --- logging --------------------------------------------------------------------------------
    def record_batch(self, rollouts, rewards, signal, method, stage: int) -> None:
        # the rewards, what any method could learn from (groups with a spread), and the method's signal
        metrics = {**rewards.metrics("train/reward"), **group_metrics(rollouts, rewards)}
        metrics.update(method.signal_metrics(rollouts, rewards, signal))
        metrics["train/pairing_stage"] = float(stage)
        metrics["train/reward/faults"] = float(self.reward.faults)  # completions whose checker raised
        metrics["train/completion_tokens"] = rollouts.completion_mask.sum().item() / max(1, rollouts.n)
        # reduced over ranks weighted by prompts; pair statistics weighted by pairs
        per_pair = {k: v for k, v in metrics.items() if k in PAIR_WEIGHTED or k.startswith(PAIR_PREFIXES)}
        self.ledger.record(
            {k: v for k, v in metrics.items() if k not in per_pair}, max(1, len(rollouts.problems))
        )
        self.ledger.record(per_pair, signal.m)
        self.log("reward", metrics["train/reward/total"], prog_bar=True, logger=False)
        self.log("pairs", metrics["train/pairs"], prog_bar=True, logger=False)

    # --- distributed ----------------------------------------------------------------------------
    @property
    def world(self) -> int:
        """Number of processes training together (1 without a trainer, or in a single process)."""
        return self._trainer.world_size if self._trainer is not None else 1

    def all_gather_step(self, mine: dict) -> list[dict]:
        """Every rank's ledger entry of this step, in rank order (the ledger's DDP reduction)."""
        import torch.distributed as dist

        ranks: list = [None] * self.world
        dist.all_gather_object(ranks, mine)
        return ranks

    def zero_loss(self) -> Tensor:
        """DDP: a rank with nothing to learn still joins the gradient all-reduce, with zeros."""
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        return sum(p.sum() for p in trainable) * 0.0

    def on_train_end(self) -> None:
        if self.world == 1:
            return
        mine = {
            "tokens": self.ledger.rank_tokens_generated,
            "weights": weights_sha256(self.model.state_dict()),
            "faults": self.reward.faults,
        }
        ranks = self.all_gather_step(mine)
        self.ddp_report = {
            "world_size": self.world,
            "tokens_generated_per_rank": [r["tokens"] for r in ranks],
            "weights_sha256_per_rank": [r["weights"] for r in ranks],
            "reward_faults_per_rank": [r["faults"] for r in ranks],
        }

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.max_tokens is not None and self.tokens_generated >= self.max_tokens:
            log.info(
                "token budget reached: %d >= %d generated tokens", self.tokens_generated, self.max_tokens
            )
            self.trainer.should_stop = True

    # --- optimizer & state ----------------------------------------------------------------------
    def configure_optimizers(self):
        return self.optimizer_factory(params=[p for p in self.model.parameters() if p.requires_grad])

    def on_fit_start(self) -> None:
        for ref in self._ref:
            ref.to(self.device)
        if self.init_optimizer_state is not None:  # before a resume restores its own state, which wins
            opt = self.trainer.optimizers[0]
            own = opt.state_dict()["param_groups"]  # this run's hyperparameters, same parameter order
            saved = self.init_optimizer_state["param_groups"]
            if [len(g["params"]) for g in saved] != [len(g["params"]) for g in own]:
                raise ConfigError("init_optimizer: the checkpoint's optimizer holds different parameters")
            opt.load_state_dict({"state": self.init_optimizer_state["state"], "param_groups": own})

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.lora:  # the frozen base is the run's starting model: keep the adapters only
            keep = trainable_keys(self.model, "model.")
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        checkpoint["gfpo_counters"] = {**self.ledger.state_dict(), "rng": self.rng.getstate()}
        checkpoint["gfpo_state"] = self.run_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.lora:  # loading is not strict (no base weights): every adapter must be there
            missing = trainable_keys(self.model, "model.") - set(checkpoint["state_dict"])
            if missing:
                raise ConfigError(
                    f"checkpoint lacks {len(missing)} adapter weights, e.g. {sorted(missing)[0]}"
                )
        counters = checkpoint.get("gfpo_counters", {})
        self.ledger.load_state_dict(counters)
        if "rng" in counters:
            self.rng.setstate(counters["rng"])
        if "gfpo_state" in checkpoint:
            self.load_run_state(checkpoint["gfpo_state"])

    def summary_fields(self) -> dict:
        """The run's own numbers for summary.json (summary.py RunSummary; under DDP: all ranks')."""
        ddp = self.ddp_report  # None in a single process
        return {
            "tokens_generated": self.tokens_generated,
            "skipped_batches": self.ledger.skipped_batches,
            "nonfinite_steps": self.ledger.nonfinite_steps,
            "reward_faults": sum(ddp["reward_faults_per_rank"]) if ddp else self.reward.faults,
            "ddp": ddp,
            "schedule_switches": self.schedule.switches,
        }

    # --- exact resume ---------------------------------------------------------------------------
    def run_state(self) -> dict:
        """Everything besides weights and optimizer that the next step depends on: the boxes' own
        random state and the global RNGs that sampling draws from."""
        return {
            "sampler": self.sampler.state_dict(),
            "reward": self.reward.state_dict(),
            "schedule": self.schedule.state_dict(),
            "global_rng": global_rng_state(),
        }

    def load_run_state(self, state: dict) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.reward.load_state_dict(state["reward"])
        self.schedule.load_state_dict(state["schedule"])
        # Set once training starts: building the trainer and optimizer in between may draw from them.
        self._pending_rng = state["global_rng"]

    def on_train_start(self) -> None:
        if self._pending_rng is not None:
            set_global_rng_state(self._pending_rng)
            self._pending_rng = None
        if self.world > 1 and self.global_rank > 0:  # rank 0 draws as a single process would
            seed_rank(self.seed, self.global_rank)  # the others: their own draws, not rank 0's
        if self.max_tokens is not None and self.tokens_generated >= self.max_tokens:
            self.trainer.should_stop = True  # resumed from the step that spent the budget
