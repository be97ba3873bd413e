"""Which samples a reader gets, in which order: epoch shuffles, distributed ranks, data-loader
workers and mid-epoch resume, the same for every framework adapter.

The rule, in three steps:
1. The epoch's order over the whole split depends only on (seed, epoch) and the shard sizes:
   shards are shuffled, then samples are shuffled within windows of `window` consecutive shards
   (`window=None`: over the whole split), so a reader of compressed shards keeps few blocks live.
2. Rank r of R takes the r-th of R contiguous, near-equal slices of that order; a resume skips
   the first `start` samples of the rank's slice.
3. Worker w of W takes the batches j (of `batch_size` consecutive samples of the rest) with
   j % W == w. A PyTorch DataLoader takes batches from its workers in turn, so what it delivers
   is the rank's order exactly, whatever the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._build import SplitDataset
    from ._pipeline import OnlineSplit
    from ._readers import Sample


@dataclass(frozen=True)
class EpochOrder:
    """The order of one split's samples in each epoch (see the module's rule)."""

    shard_sizes: Sequence[int]
    shuffle: bool = True
    seed: int = 0
    window: int | None = None

    def epoch(self, epoch: int) -> np.ndarray:
        """Every sample index of the split once, in epoch `epoch`'s order."""
        total = int(sum(self.shard_sizes))
        if not self.shuffle:
            return np.arange(total, dtype=np.int64)
        rng = np.random.Generator(np.random.PCG64([self.seed, epoch]))
        if self.window is None:
            return rng.permutation(total).astype(np.int64)
        starts = np.cumsum([0, *self.shard_sizes])
        shards = rng.permutation(len(self.shard_sizes))
        parts = []
        for at in range(0, len(shards), self.window):
            group = shards[at : at + self.window]
            indices = np.concatenate([np.arange(starts[s], starts[s + 1]) for s in group])
            parts.append(rng.permutation(indices))
        return np.concatenate(parts).astype(np.int64) if parts else np.arange(0, dtype=np.int64)

    def rank(self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0) -> np.ndarray:
        """Rank `rank`'s samples of the epoch, the first `start` of them skipped (a resume)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} of a world of {world_size}")
        order = self.epoch(epoch)
        bounds = len(order) * np.arange(world_size + 1) // world_size
        return order[bounds[rank] : bounds[rank + 1]][start:]

    def worker(
        self,
        epoch: int,
        rank: int = 0,
        world_size: int = 1,
        worker: int = 0,
        num_workers: int = 1,
        batch_size: int = 1,
        start: int = 0,
    ) -> np.ndarray:
        """What worker `worker` of `num_workers` on rank `rank` reads, in its order."""
        if not 0 <= worker < num_workers:
            raise ValueError(f"worker {worker} of {num_workers}")
        mine = self.rank(epoch, rank, world_size, start)
        batch = np.arange(len(mine)) // max(batch_size, 1)
        return mine[batch % num_workers == worker]


def distributed_rank() -> tuple[int, int]:
    """(rank, world size): from torch.distributed when it is initialised, else RANK/WORLD_SIZE."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:
        pass
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def default_window(dataset: SplitDataset | OnlineSplit) -> int | None:
    """Whole-split shuffles where random access is cheap (memory-mapped or file-per-sample layouts),
    two-shard windows where a read decodes a block."""
    return None if dataset.build.memory_mapped else 2


def epoch_order(
    dataset: SplitDataset | OnlineSplit, shuffle: bool = True, seed: int = 0, window: int | str | None = "auto"
) -> EpochOrder:
    """The split's `EpochOrder`, its shuffle window chosen by `default_window` unless given."""
    chosen = default_window(dataset) if window == "auto" else window
    return EpochOrder(dataset.shard_sizes, shuffle, seed, chosen)  # type: ignore[arg-type]


def batches(
    dataset: SplitDataset | OnlineSplit,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
    rank: int | None = None,
    world_size: int | None = None,
    start: int = 0,
) -> Iterator[Sample]:
    """Batches of `dataset` as dicts of stacked numpy arrays, for JAX or any numpy loop. The order
    is `EpochOrder`'s; rank and world size default to `distributed_rank()`."""
    if rank is None or world_size is None:
        rank, world_size = distributed_rank()
    mine = epoch_order(dataset, shuffle, seed).rank(epoch, rank, world_size, start)
    stop = len(mine) - len(mine) % batch_size if drop_last else len(mine)
    for at in range(0, stop, batch_size):
        yield dataset.batch(mine[at : at + batch_size])
