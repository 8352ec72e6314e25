"""The training prompts and their order: a LightningDataModule whose position survives a restart.

`PromptOrder` is a batch sampler that yields exactly the batches of
`DataLoader(problems, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))`,
epoch after epoch, and can resume in the middle of an epoch. Its `state_dict` holds the shuffling
generator's state at the start of the current epoch and how many batches of the epoch were taken;
`load_state_dict` replays the epoch to that point. The DataModule puts that state into every
Lightning checkpoint, so a resumed run continues with the next prompt instead of replaying the
epoch from its start (Lightning's default for a plain DataLoader).

Same order as the plain DataLoader: each `iter(DataLoader)` draws the loader's worker base seed from
its generator before the sampler's `randperm`; `PromptOrder` makes that draw itself at the start of
each epoch (the DataLoader gets a throw-away generator of its own, so the global torch RNG, which
sampling uses, is never touched). Departs from torchdata's StatefulDataLoader, which would also
work but snapshots the iterator rather than the order, and is not installed here.

Distributed (DDP): every rank draws the same global order (same seed, same generator) and takes its
share of each step's `prompts_per_step` prompts, rank r of w the batch's prompts r, r + w, ... (a
rank whose share would be empty, in a batch smaller than w, takes the batch's first prompt again).
`prompts_per_step` stays the number of prompts per step over all ranks, and the state (epoch, batches
taken) is the same on every rank, so a checkpoint resumes any number of ranks. Lightning would swap a
plain DataLoader's sampler for its DistributedSampler; train.py turns that off
(`use_distributed_sampler=False`), since this sampler shards itself. One process: the batches as before.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler

from gfpo_bench.config_schema import require
from gfpo_bench.tasks.base import Task
from gfpo_bench.types import Problem


class PromptOrder(Sampler[list[int]]):
    """Batches of indices into `n` problems, shuffled per epoch as DataLoader(shuffle=True) does.

    >>> order = PromptOrder(5, 2, seed=0); first = list(order)  # one epoch: 3 batches
    >>> resumed = PromptOrder(5, 2, seed=0); _ = next(iter(resumed)); state = resumed.state_dict()
    >>> again = PromptOrder(5, 2, seed=0); again.load_state_dict(state); list(again) == first[1:]
    True
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.batches = BatchSampler(RandomSampler(range(n), generator=self.gen), batch_size, drop_last=False)
        self.epoch = -1  # index of the current epoch (-1: none started)
        self.taken = 0  # batches of the current epoch handed out
        self.epoch_rng: torch.Tensor | None = None  # generator state when the epoch's permutation began
        self._it = None  # the current epoch's batch iterator
        self.rank, self.world = 0, 1  # DDP: this rank takes batch[rank::world] (see `shard`)

    def __len__(self) -> int:
        return len(self.batches)

    def shard(self, rank: int, world: int) -> None:
        """DDP: from now on, hand out this rank's share of each batch (one process: the batch)."""
        self.rank, self.world = rank, world

    def __iter__(self):
        if self._it is None or self.taken >= len(self):  # a new epoch (else: continue a resumed one)
            torch.empty((), dtype=torch.int64).random_(generator=self.gen)  # DataLoader's base-seed draw
            self.epoch, self.taken = self.epoch + 1, 0
            self.epoch_rng = self.gen.get_state()
            self._it = iter(self.batches)
        it = self._it
        for batch in it:  # lazily: the loader never asks past what training consumed
            self.taken += 1
            yield batch if self.world == 1 else (batch[self.rank :: self.world] or batch[:1])

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "taken": self.taken, "epoch_rng": self.epoch_rng}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.taken, self.epoch_rng = state["epoch"], state["taken"], state["epoch_rng"]
        self._it = None
        if self.epoch_rng is None:  # saved before the first batch: start from scratch
            return
        self.gen.set_state(self.epoch_rng)
        self._it = iter(self.batches)
        for _ in range(self.taken):  # the same draws as the interrupted run made
            next(self._it)


class PromptDataModule(L.LightningDataModule):
    """The task's problems: the training pool, `prompts_per_step` per batch in a resumable shuffled
    order, and the evaluation problems. Built from the `data` node of conf/config.yaml (`_partial_`:
    train.py passes the task)."""

    def __init__(self, task: Task, prompts_per_step: int, seed: int) -> None:
        super().__init__()
        require("prompts_per_step", prompts_per_step)  # its range: config_schema.py
        self.task = task
        self.train_pool: list[Problem] = task.problems("train")  # also DAPO's refill source (module.py)
        self.order = PromptOrder(len(self.train_pool), prompts_per_step, seed)
        self._eval: dict[
            tuple[int, str, int | None], list[Problem]
        ] = {}  # (id(task), split, limit) -> problems

    def eval_problems(self, task: Task | None, split: str, limit: int | None) -> list[Problem]:
        """The first `limit` problems of `task`'s split (default task: the training one)."""
        task = task or self.task
        key = (id(task), split, limit)  # two configs of one task (e.g. arith twice) are two tasks
        if key not in self._eval:
            self._eval[key] = task.problems(split)[:limit]
        return self._eval[key]

    def train_dataloader(self) -> DataLoader:
        if self.trainer is not None:  # DDP: each rank its share of every step's prompts
            self.order.shard(self.trainer.global_rank, self.trainer.world_size)
        # its own generator: the loader's base-seed draw must not touch the global RNG
        return DataLoader(
            self.train_pool, batch_sampler=self.order, collate_fn=list, generator=torch.Generator()
        )

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch  # a list of Problems (text); tensors are made on the device in each box

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order.load_state_dict(state["order"])
