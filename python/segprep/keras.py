"""Keras 3 (any backend): a `keras.utils.PyDataset` of `(x, y, sample_weight)` batches, so a plain
`model.fit` trains with class weights and never learns ignore or padding pixels.

    import segprep.keras
    train = segprep.keras.PyDataset("out/camvid", "train", batch_size=8, class_weights="median")
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    model.fit(train, epochs=10)

x: the images as float32 (times `rescale` when given); y: the labels as int32 with ignore pixels
set to 0; sample_weight: float32 (B,H,W), the pixel's class weight, 0 on ignore and padding pixels.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from ._adapt import Source, keras_weights, loss_weights, split_of
from ._order import epoch_order


class PyDataset(keras.utils.PyDataset):  # type: ignore[misc]
    """Batches of a split for `model.fit`, reshuffled at each epoch's end from `seed`.

    `class_weights`: a scheme of `Build.class_weights` (`"inverse"`, `"median"`, `"enet"`,
    `"effective"`, from the train split's counts), an array indexed by class id, or None (weight 1).
    `workers`, `use_multiprocessing`, `max_queue_size` are Keras's own."""

    def __init__(
        self,
        source: Source,
        split: str = "train",
        *,
        batch_size: int = 8,
        class_weights: str | np.ndarray | None = "inverse",
        shuffle: bool = True,
        seed: int = 0,
        rescale: float | None = None,
        drop_last: bool = False,
        **keras_options: Any,
    ) -> None:
        super().__init__(**keras_options)
        self.split = split_of(source, split)
        self.weights = loss_weights(self.split, class_weights)
        self.ignore_index = self.split.build.ignore_index
        self.batch_size, self.rescale, self.drop_last = batch_size, rescale, drop_last
        self.order = epoch_order(self.split, shuffle, seed)
        self.epoch = 0
        self._indices = self.order.epoch(0)

    def __len__(self) -> int:
        n = len(self._indices) / self.batch_size
        return math.floor(n) if self.drop_last else math.ceil(n)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        chosen = self._indices[i * self.batch_size : (i + 1) * self.batch_size]
        batch = self.split.batch(chosen)
        x = batch["image"].astype(np.float32)
        if self.rescale is not None:
            x *= self.rescale
        y, weight = keras_weights(batch["label"], self.ignore_index, self.weights)
        return x, y, weight

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._indices = self.order.epoch(self.epoch)
