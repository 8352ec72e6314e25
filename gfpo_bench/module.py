"""The LightningModule: wires the boxes of the one loop together and nothing else.

    training_step:  sample -> reward -> filter_groups (DAPO) -> pairs -> pair_loss -> finish_step

Each unique sequence is scored by one forward pass per step (the policy, and the frozen reference
when `loss.use_reference`), never once per pair. The reference is a frozen copy of the starting
model, or, for a LoRA (peft) model, the same model with its adapters disabled (no second copy; its
checkpoints then hold the adapters only). A batch with no pairs, or a non-finite loss, skips
the optimizer step; both are counted and logged and the run goes on.

Exact resume: besides weights and optimizer, checkpoints carry `run_state()` (the sampler's,
reward's and schedule's `state_dict`s, the global RNGs sampling draws from) and the counters; the
callbacks and the datamodule put their own state there too. A resumed run goes on as if never stopped.

Distributed (DDP; FSDP takes the same path): each rank samples and scores its own share of the
step's prompts (datamodule.py) and computes its own loss; DDP averages the gradients. Once per step
the ranks agree (`finish_step`, `sync_step`): the generated tokens are summed, so `tokens_generated`, the token
budget and the schedule are global and the same on every rank (the stop decision must be); the
step's logged metrics are gathered and reduced (counts summed, rates averaged over the ranks that
report them, weighted by prompts, or by pairs for pair statistics), so every rank logs the global
number; skipped batches are summed. Lightning cannot skip a step under DDP (every rank must join
the gradient all-reduce): a rank with no pairs or a non-finite loss returns a zero loss that still
touches every trainable parameter (its gradient is 0, averaged in), and the skip is counted. So
under DDP a step where every rank skips still steps the optimizer with a zero gradient (Adam's
moments decay); a single process skips the step as before, and its numbers are unchanged. Rank 0
draws from the global RNGs as a single process would; ranks > 0 reseed theirs from (seed, rank).
A resumed DDP run continues with the checkpoint's (rank 0's) state on every rank: it resumes, but
not bit-exactly as the uninterrupted DDP run would.
"""

from __future__ import annotations

import copy
import logging
import random

import lightning as L
import torch
from torch import Tensor

from gfpo_bench.analytics import pair_metrics
from gfpo_bench.distributed import (
    PAIR_PREFIXES,
    PAIR_WEIGHTED,
    global_rng_state,
    reduce_metrics,
    seed_rank,
    set_global_rng_state,
    weights_sha256,
)
from gfpo_bench.errors import ConfigError
from gfpo_bench.loss import LossOutput, PairwiseLoss
from gfpo_bench.models.logprobs import LOGITS_BUDGET, token_logprobs
from gfpo_bench.models.lora import is_peft, reference_mode, trainable_keys
from gfpo_bench.pairing.base import PairingStrategy
from gfpo_bench.rewards.reward import Reward
from gfpo_bench.sampling.base import Sampler
from gfpo_bench.schedule import PairingSchedule
from gfpo_bench.tasks.base import Task
from gfpo_bench.types import (
    Pairs,
    Problem,
    RewardOutput,
    Rollouts,
    concat_rewards,
    concat_rollouts,
    select_rewards,
)

log = logging.getLogger(__name__)


def loss_metrics(out: LossOutput) -> dict[str, Tensor]:
    """What a trained step logs about its loss."""
    return {
        "train/loss": out.loss.detach(),
        "train/loss_pairwise": out.pairwise.detach(),
        "train/nll": out.nll.detach(),
        "train/pair_accuracy": out.accuracy,
        "train/margin": out.margin.mean() if out.margin.numel() else out.accuracy * 0,
    }


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
    ) -> None:
        super().__init__()
        if dynamic_max_rounds < 0:
            raise ValueError(f"module.dynamic_max_rounds must be >= 0, got {dynamic_max_rounds}")
        self.init_optimizer_state = init_optimizer_state
        self.model, self.tok, self.task = model, tokenizer, task
        self.model.train()  # from_pretrained returns eval mode; dropout (if any) follows Lightning's mode
        self.sampler, self.reward, self.schedule, self.loss_fn = sampler, reward, schedule, loss
        self.optimizer_factory = optimizer
        self.use_reference, self.logits_budget = loss.use_reference, logits_budget
        self.lora = is_peft(model)
        self.strict_loading = not self.lora  # LoRA checkpoints hold the adapters only
        # A plain list keeps the frozen reference out of parameters(), the optimizer and checkpoints.
        self._ref: list[torch.nn.Module] = []
        if self.use_reference and not self.lora:  # LoRA: the reference is the model with adapters off
            ref = copy.deepcopy(model).eval()
            ref.requires_grad_(False)
            self._ref.append(ref)
        self.dynamic_max_rounds, self.max_tokens = dynamic_max_rounds, max_tokens
        self.rng = random.Random(seed)  # pairing tie-breaks and DAPO's refill prompts
        self.seed = seed
        # counters that survive checkpoint/resume (see on_save_checkpoint)
        self.tokens_generated = 0
        self.skipped_batches = 0
        self.nonfinite_steps = 0
        self.rank_tokens_generated = 0  # this rank's own generated tokens (DDP report, not checkpointed)
        self._step_tokens = 0  # DDP: this rank's tokens of the current step, summed in finish_step
        self._pending_logs: list[tuple[dict[str, float], float]] = []  # DDP: this step's (metrics, weight)
        self._skips = {"skipped": 0, "nonfinite": 0}  # DDP: this rank's skips this step
        self.ddp_report: dict | None = None  # DDP: per-rank tokens and weight hashes (summary.json)
        self._pending_rng: dict | None = None  # global RNG states of a checkpoint, set at train start
        # the batch just trained on, for the pair tables (callbacks/pair_table.py)
        self.last_pairs: tuple[Rollouts, RewardOutput, Pairs, LossOutput | None] | None = None

    # --- the loop -------------------------------------------------------------------------------
    def training_step(self, problems: list[Problem], batch_idx: int) -> Tensor | None:
        stage, strategy = self.schedule.at(self.global_step, self.tokens_generated, self.max_tokens)
        rollouts = self.sample(problems)
        rewards = self.reward(self.task, rollouts)
        if strategy.dynamic_sampling:  # DAPO
            rollouts, rewards = self.filter_groups(rollouts, rewards, strategy, want=len(problems))
        pairs = strategy(rollouts, rewards, self.rng)
        has_signal = pairs.m > 0 or pairs.sft_paths.numel() > 0
        out = self.pair_loss(rollouts, pairs, strategy.sft_coef) if has_signal else None
        return self.finish_step(rollouts, rewards, pairs, out, stage)

    # --- boxes ----------------------------------------------------------------------------------
    def sample(self, problems: list[Problem]) -> Rollouts:
        """sampler.k paths per problem from the current policy (in eval mode); counts their tokens."""
        was_training = self.model.training
        self.model.eval()
        try:
            rollouts = self.sampler.sample(self.model, self.task, problems)
        finally:
            self.model.train(was_training)
        self.count_tokens(rollouts.generated_tokens)
        return rollouts

    def count_tokens(self, n: int) -> None:
        self.rank_tokens_generated += n
        if self.world > 1:
            self._step_tokens += n  # summed over ranks in finish_step
        else:
            self.tokens_generated += n

    def filter_groups(
        self, rollouts: Rollouts, rewards: RewardOutput, strategy: PairingStrategy, want: int
    ) -> tuple[Rollouts, RewardOutput]:
        """DAPO's dynamic sampling: drop the groups the strategy does not keep (no correctness
        spread) and refill from fresh training prompts, at most `dynamic_max_rounds` extra rounds."""
        pool = self.train_pool()
        parts_r, parts_w = [], []
        for round_ in range(self.dynamic_max_rounds + 1):
            ok = rewards.correct.tolist()
            keep = [
                i
                for idx in rollouts.group_indices()
                if strategy.keep_group([ok[j] for j in idx])
                for i in idx
            ]
            if keep:
                parts_r.append(rollouts.select(keep))
                parts_w.append(select_rewards(rewards, keep))
            have = sum(len(p.problems) for p in parts_r)
            if have >= want or round_ == self.dynamic_max_rounds or not pool:
                break
            rollouts = self.sample(self.rng.sample(pool, min(want - have, len(pool))))
            rewards = self.reward(self.task, rollouts)
        kept = float(sum(len(p.problems) for p in parts_r))
        if self.world > 1:
            self._pending_logs.append(({"train/dynamic_groups_kept": kept}, 1.0))
        else:
            self.log("train/dynamic_groups_kept", kept)
        if not parts_r:  # nothing informative: an empty batch, skipped in finish_step
            return rollouts.select([]), select_rewards(rewards, [])
        return concat_rollouts(parts_r, self.tok.pad_token_id), concat_rewards(parts_w)

    def train_pool(self) -> list[Problem]:
        """Where dynamic sampling draws fresh prompts from: the datamodule's training problems."""
        data = self._trainer.datamodule if self._trainer is not None else None
        return data.train_pool if data is not None else []

    def pair_loss(self, rollouts: Rollouts, pairs: Pairs, sft_coef: float) -> LossOutput:
        """One forward pass over the unique sequences the pairs (and SFT term) use."""
        used = torch.unique(torch.cat([pairs.better, pairs.worse, pairs.sft_paths]))  # [U]
        remap = torch.full((rollouts.n,), -1, dtype=torch.long)
        remap[used] = torch.arange(used.numel())
        width = int(rollouts.attention_mask[used].sum(-1).max())
        tokens = rollouts.tokens[used, :width].to(self.device)  # [U, W]
        attn = rollouts.attention_mask[used, :width].to(self.device)  # [U, W]
        comp = rollouts.completion_mask[used, :width].to(self.device)  # [U, W]
        logp = token_logprobs(self.model, tokens, attn, self.logits_budget)  # [U, W]
        ref = self.reference_logprobs(tokens, attn) if self.use_reference else None
        local = Pairs(
            remap[pairs.better].to(self.device),
            remap[pairs.worse].to(self.device),
            pairs.diverge.to(self.device),
            pairs.diverge_step,
            pairs.prefix_frac,
            remap[pairs.sft_paths].to(self.device),
        )
        return self.loss_fn(logp, ref, comp, local, sft_coef)

    def finish_step(
        self, rollouts: Rollouts, rewards: RewardOutput, pairs: Pairs, out: LossOutput | None, stage: int
    ) -> Tensor | None:
        """Log the step, and hand Lightning its loss, or None to skip the optimizer step when there
        was nothing to learn from (no pairs) or the loss is not finite; skips are counted and the
        run goes on. Under DDP every rank returns a loss (see the module docstring)."""
        if self.world > 1:  # every rank adds the step's tokens of all ranks: the same count everywhere
            self.tokens_generated += int(self.all_sum(float(self._step_tokens)))
            self._step_tokens = 0
        self.log_batch(rollouts, rewards, pairs, stage)
        self.last_pairs = (rollouts, rewards, pairs, out)
        skip = "skipped" if out is None else None if torch.isfinite(out.loss) else "nonfinite"
        if self.world > 1:
            if skip == "nonfinite":
                log.warning("non-finite loss at step %d on this rank: skipped", self.global_step)
            if skip:
                self._skips[skip] += 1
                return self.sync_step(None)
            self.log("loss", out.loss.detach(), prog_bar=True, logger=False)
            self._pending_logs.append(({k: float(v) for k, v in loss_metrics(out).items()}, 1.0))
            return self.sync_step(out.loss)
        if skip == "skipped":
            self.skipped_batches += 1
            self.log("train/skipped_batches", float(self.skipped_batches))
            return None
        if skip == "nonfinite":
            self.nonfinite_steps += 1
            log.warning(
                "non-finite loss at step %d: skipped (%d so far)", self.global_step, self.nonfinite_steps
            )
            self.log("train/nonfinite_steps", float(self.nonfinite_steps))
            return None
        self.log("loss", out.loss.detach(), prog_bar=True, logger=False)
        self.log_dict(loss_metrics(out), prog_bar=False)
        return out.loss

    @torch.no_grad()
    def reference_logprobs(self, tokens: Tensor, attn: Tensor) -> Tensor:
        """tokens [U, W], attn [U, W] -> [U, W] log-probs under the frozen reference."""
        if self.lora:
            with reference_mode(self.model):
                return token_logprobs(self.model, tokens, attn, self.logits_budget)
        return token_logprobs(self._ref[0], tokens, attn, self.logits_budget)

    # --- logging --------------------------------------------------------------------------------
    def log_batch(self, rollouts: Rollouts, rewards: RewardOutput, pairs: Pairs, stage: int) -> None:
        metrics = rewards.metrics("train/reward")
        metrics.update(pair_metrics(rollouts, rewards, pairs))
        metrics["train/tokens_generated"] = float(self.tokens_generated)
        metrics["train/pairing_stage"] = float(stage)
        metrics["train/reward/faults"] = float(self.reward.faults)  # completions whose checker raised
        metrics["train/completion_tokens"] = rollouts.completion_mask.sum().item() / max(1, rollouts.n)
        if self.world > 1:  # reduced over ranks in sync_step; pair statistics weighted by pairs
            per_pair = {k: v for k, v in metrics.items() if k in PAIR_WEIGHTED or k.startswith(PAIR_PREFIXES)}
            rest = {k: v for k, v in metrics.items() if k not in per_pair}
            self._pending_logs += [(rest, float(max(1, len(rollouts.problems)))), (per_pair, float(pairs.m))]
        else:
            self.log_dict(metrics, batch_size=max(1, len(rollouts.problems)))
        self.log("reward", metrics["train/reward/total"], prog_bar=True, logger=False)
        self.log("pairs", metrics["train/pairs"], prog_bar=True, logger=False)

    # --- distributed ----------------------------------------------------------------------------
    @property
    def world(self) -> int:
        """Number of processes training together (1 without a trainer, or in a single process)."""
        trainer = self._trainer
        return trainer.world_size if trainer is not None else 1

    def all_sum(self, value: float) -> float:
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        return float(self.trainer.strategy.reduce(t, reduce_op="sum").item())

    def sync_step(self, loss: Tensor | None) -> Tensor:
        """DDP, at the end of every rank's training_step: the step's metrics and skips of all ranks,
        reduced and logged on every rank; a rank without a loss returns a zero one (see docstring)."""
        import torch.distributed as dist

        mine = {"logs": self._pending_logs, "skips": self._skips}
        ranks: list = [None] * self.world
        dist.all_gather_object(ranks, mine)
        self._pending_logs, self._skips = [], {"skipped": 0, "nonfinite": 0}
        skipped = sum(r["skips"]["skipped"] for r in ranks)
        nonfinite = sum(r["skips"]["nonfinite"] for r in ranks)
        self.skipped_batches += skipped
        self.nonfinite_steps += nonfinite
        metrics = reduce_metrics([entry for r in ranks for entry in r["logs"]])
        metrics["train/tokens_generated"] = float(self.tokens_generated)  # global already
        if skipped:
            metrics["train/skipped_batches"] = float(self.skipped_batches)
        if nonfinite:
            metrics["train/nonfinite_steps"] = float(self.nonfinite_steps)
        self.log_dict(metrics, batch_size=1)
        if loss is not None:
            return loss
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        return sum(p.sum() for p in trainable) * 0.0  # joins the gradient all-reduce with zeros

    def on_train_end(self) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist

        mine = {
            "tokens": self.rank_tokens_generated,
            "weights": weights_sha256(self.model.state_dict()),
            "faults": self.reward.faults,
        }
        ranks: list = [None] * self.world
        dist.all_gather_object(ranks, mine)
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
        checkpoint["gfpo_counters"] = {
            "tokens_generated": self.tokens_generated,
            "skipped_batches": self.skipped_batches,
            "nonfinite_steps": self.nonfinite_steps,
            "rng": self.rng.getstate(),
        }
        checkpoint["gfpo_state"] = self.run_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.lora:  # loading is not strict (no base weights): every adapter must be there
            missing = trainable_keys(self.model, "model.") - set(checkpoint["state_dict"])
            if missing:
                raise ConfigError(
                    f"checkpoint lacks {len(missing)} adapter weights, e.g. {sorted(missing)[0]}"
                )
        c = checkpoint.get("gfpo_counters", {})
        self.tokens_generated = c.get("tokens_generated", 0)
        self.skipped_batches = c.get("skipped_batches", 0)
        self.nonfinite_steps = c.get("nonfinite_steps", 0)
        if "rng" in c:
            self.rng.setstate(c["rng"])
        if "gfpo_state" in checkpoint:
            self.load_run_state(checkpoint["gfpo_state"])

    def summary_fields(self) -> dict:
        """The run's own numbers for summary.json (summary.py RunSummary; under DDP: all ranks')."""
        ddp = self.ddp_report  # None in a single process
        return {
            "tokens_generated": self.tokens_generated,
            "skipped_batches": self.skipped_batches,
            "nonfinite_steps": self.nonfinite_steps,
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
