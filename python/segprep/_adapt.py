"""What every framework adapter shares: resolving a build or split, and owned copies of samples."""

from __future__ import annotations

import os
from typing import Any, Union

import numpy as np

from ._build import Build, SplitDataset
from ._build import open as open_build

Source = Union[Build, SplitDataset, str, "os.PathLike[str]"]


def split_of(source: Source, split: str) -> SplitDataset:
    """`source` as a split dataset: a split as it is, a build's `split`, a path opened first."""
    if isinstance(source, SplitDataset):
        return source
    build = source if isinstance(source, Build) else open_build(source)
    return build[split]


def loss_weights(dataset: SplitDataset, class_weights: str | np.ndarray | None) -> np.ndarray | None:
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
        weight = np.ones(label.shape, dtype=np.float32)
    else:
        weight = class_weights[np.where(ignored, 0, label).astype(np.intp)]
    weight[ignored] = 0.0
    y = np.where(ignored, 0, label).astype(np.int32)
    return y, weight.astype(np.float32, copy=False)
