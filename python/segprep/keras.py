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

from ._adapt import Source, keras_weights, loss_weights, set_split_epoch, split_of
from ._order import epoch_order


class PyDataset(keras.utils.PyDataset):  # type: ignore[misc]
    """Batches of a split for `model.fit`, reshuffled at each epoch's end from `seed`; over a live
    `segprep.Pipeline` (or a `.toml` path), each epoch also draws fresh copies.

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
        self._in_epoch, self._fit_sets_epochs = False, False

    def __len__(self) -> int:
        n = len(self._indices) / self.batch_size
        return math.floor(n) if self.drop_last else math.ceil(n)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        chosen = self._indices[i * self.batch_size : (i + 1) * self.batch_size]
        batch = self.split.batch(chosen)
        image = batch["image"]
        # one pass: converted and scaled together
        x = image.astype(np.float32) if self.rescale is None else np.multiply(image, np.float32(self.rescale))
        y, weight = keras_weights(batch["label"], self.ignore_index, self.weights)
        return x, y, weight

    def set_epoch(self, epoch: int) -> None:
        """Moves to epoch `epoch`: its shuffle and, over a live pipeline, its copies."""
        self.epoch = epoch
        self._indices = self.order.epoch(epoch)
        set_split_epoch(self.split, epoch)

    def epochs_from_fit(self) -> keras.callbacks.Callback:
        """A callback for `model.fit(..., callbacks=[...])` that takes each epoch's number from
        Keras, so fit's epoch e (also after `initial_epoch`, on a resume) is exactly epoch e of
        `EpochOrder` and of a live pipeline's copies. Without it the epochs move on at each epoch's
        end, and the batch Keras draws to build the model before training counts as one."""
        return _FitEpochs(self)

    def on_epoch_begin(self) -> None:
        self._in_epoch = True

    def on_epoch_end(self) -> None:
        # Keras also calls this when fit resets its iterator before the first epoch; only the end
        # of an epoch that began moves on. Here, after Keras has stopped its workers, every batch
        # of an epoch keeps that epoch's order and copies.
        if self._in_epoch and not self._fit_sets_epochs:
            self.set_epoch(self.epoch + 1)
        self._in_epoch = False


class _FitEpochs(keras.callbacks.Callback):  # type: ignore[misc]
    """Sets the dataset's epoch from fit's count, before fit starts the epoch's batches."""

    def __init__(self, data: PyDataset) -> None:
        super().__init__()
        self.data = data
        data._fit_sets_epochs = True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.data.set_epoch(epoch)
