"""What every framework adapter shares: resolving a build or split, and owned copies of samples."""

from __future__ import annotations

import os
from typing import Any, Union

import numpy as np

from ._build import Build, SplitDataset
from ._build import open as open_build
from ._pipeline import OnlineSplit, Pipeline

# a build (or one of its splits), a live pipeline (or one of its splits), or a path to either
Source = Union[Build, SplitDataset, Pipeline, OnlineSplit, str, "os.PathLike[str]"]
Dataset = Union[SplitDataset, OnlineSplit]


def split_of(source: Source, split: str) -> Dataset:
    """`source` as a split dataset: a split as it is, a build's or a pipeline's `split`, a path
    opened first (a `.toml` file as a live `Pipeline`, anything else as a build)."""
    if isinstance(source, (SplitDataset, OnlineSplit)):
        return source
    if isinstance(source, Pipeline):
        return source.dataset(split)
    if isinstance(source, Build):
        return source[split]
    if os.fspath(source).endswith(".toml"):
        return Pipeline(source).dataset(split)
    return open_build(source)[split]


def set_split_epoch(dataset: Dataset, epoch: int) -> None:
    """Moves a live pipeline's split to `epoch`'s copies (a build's split is the same every epoch)."""
    if isinstance(dataset, OnlineSplit):
        dataset.set_epoch(epoch)


def loss_weights(dataset: Dataset, class_weights: str | np.ndarray | None) -> np.ndarray | None:
    """Per-class loss weights: a scheme of `Build.class_weights` (from the train split's counts,
    or the dataset's own split in a build without one), an array indexed by class id, or None."""
    if isinstance(class_weights, str):
        build = dataset.build
        split = "train" if "train" in build.splits else dataset.split
        return build.class_weights(split, class_weights)
    return None if class_weights is None else np.asarray(class_weights, dtype=np.float32)


def owned(sample: dict[str, Any]) -> dict[str, Any]:
    """A sample whose arrays own writable memory (views of a memory map are read-only)."""
    return {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in sample.items()}


def keras_weights(
    label: np.ndarray, ignore_index: int, class_weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(y, sample_weight) for a per-pixel loss: ignore and padding pixels (the ignore index) get
    class 0 in y and weight 0, so sparse categorical cross-entropy neither fails nor learns them."""
    ignored = label == ignore_index
    if class_weights is None:
        weight = np.logical_not(ignored).astype(np.float32)
    else:
        weight = class_weights[np.where(ignored, 0, label).astype(np.intp)]
        weight[ignored] = 0.0
    y = label.astype(np.int32)
    y[ignored] = 0
    return y, weight.astype(np.float32, copy=False)
