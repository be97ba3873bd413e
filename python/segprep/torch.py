"""PyTorch datasets over a build or a live `segprep.Pipeline` (torch is imported when this module is).

    from torch.utils.data import DataLoader
    from segprep.torch import Dataset, IterableDataset

    train = IterableDataset("out/camvid", "train", batch_size=8, seed=0)
    loader = DataLoader(train, batch_size=8, num_workers=2)
    for epoch in range(10):
        train.set_epoch(epoch)
        for batch in loader: ...       # batch["image"] (8,H,W,C), batch["label"] (8,H,W)

Samples are dicts of tensors: `image` (H,W,C) and `label` (H,W) as stored, `key`, and `augment`
(the drawn parameters, a JSON string; `null` for originals) where the build records them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Callable

import numpy as np
import torch
from torch.utils import data

from ._adapt import Source, owned, set_split_epoch, split_of
from ._order import distributed_rank, epoch_order

Transform = Callable[[dict[str, Any]], Any]


def to_torch(sample: dict[str, Any]) -> dict[str, Any]:
    """Arrays as tensors (copied out of the memory map); parameters as a JSON string, which the
    default collate keeps as a list of strings."""
    out: dict[str, Any] = {}
    for name, value in owned(sample).items():
        if isinstance(value, np.ndarray):
            out[name] = torch.from_numpy(value)
        elif name == "augment":
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


class Dataset(data.Dataset):  # type: ignore[type-arg]
    """Map-style: `len()` and `ds[i]`, for any sampler (shuffling, distributed samplers). Over a
    live `segprep.Pipeline`, `set_epoch(e)` before each epoch gives that epoch's fresh copies (set it
    before the loader starts its workers: no `persistent_workers`)."""

    def __init__(self, source: Source, split: str = "train", transform: Transform | None = None) -> None:
        self.split = split_of(source, split)
        self.transform = transform

    def set_epoch(self, epoch: int) -> None:
        set_split_epoch(self.split, epoch)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> Any:
        sample = to_torch(self.split[i])
        return self.transform(sample) if self.transform else sample


class IterableDataset(data.IterableDataset):  # type: ignore[type-arg]
    """Shard-aware iteration: the epoch's shuffled order split across distributed ranks (from
    torch.distributed, else RANK/WORLD_SIZE) and DataLoader workers, so that every sample comes
    once per epoch and the loader delivers the same order for any `num_workers` (give the
    loader's `batch_size` here too). `set_epoch(e)` before each epoch; `set_epoch(e, start=n)`
    resumes after the first n samples this rank delivered in epoch e. Set the epoch before the
    loader starts its workers (no `persistent_workers`)."""

    def __init__(
        self,
        source: Source,
        split: str = "train",
        *,
        batch_size: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        window: int | str | None = "auto",
        transform: Transform | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.split = split_of(source, split)
        self.order = epoch_order(self.split, shuffle, seed, window)
        self.batch_size, self.transform = batch_size, transform
        self.rank, self.world_size = (rank, world_size) if rank is not None and world_size else distributed_rank()
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start
        set_split_epoch(self.split, epoch)

    def __len__(self) -> int:
        """Samples this rank delivers in the current epoch (after a resume's skip)."""
        return len(self.order.rank(self.epoch, self.rank, self.world_size, self.start))

    def indices(self) -> np.ndarray:
        """This worker's samples, in order."""
        info = data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        return self.order.worker(self.epoch, self.rank, self.world_size, worker, workers, self.batch_size, self.start)

    def __iter__(self) -> Iterator[Any]:
        for i in self.indices():
            sample = to_torch(self.split[int(i)])
            yield self.transform(sample) if self.transform else sample
