"""tf.data over a build (tensorflow is imported when this module is).

    import segprep.tf
    ds = segprep.tf.dataset("out/camvid", "train", seed=0).batch(8).prefetch(2)
    for batch in ds: ...     # batch["image"] (8,H,W,C), batch["label"] (8,H,W), batch["key"]

With `keras=True` the elements are (x, y, sample_weight) as `segprep.keras.PyDataset` gives them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from ._adapt import Source, keras_weights, loss_weights, split_of
from ._order import epoch_order
from ._pipeline import OnlineSplit

TF_DTYPES = {np.dtype(np.uint8): tf.uint8, np.dtype(np.uint16): tf.uint16, np.dtype(np.float32): tf.float32}


def dataset(
    source: Source,
    split: str = "train",
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    keras: bool = False,
    class_weights: str | np.ndarray | None = "inverse",
) -> tf.data.Dataset:
    """One epoch of the split as a `tf.data.Dataset` with a declared output signature (the
    split's sample shape and dtypes); `epoch` picks the shuffle, as `EpochOrder` defines it, and
    over a live `segprep.Pipeline` the epoch's copies."""
    ds = split_of(source, split)
    if isinstance(ds, OnlineSplit):
        ds = ds.at_epoch(epoch)
    build = ds.build
    first = ds[0]
    image, label = first["image"], first["label"]
    order = epoch_order(ds, shuffle, seed)
    if keras:
        weights = loss_weights(ds, class_weights)
        signature: Any = (
            tf.TensorSpec(image.shape, tf.float32),
            tf.TensorSpec(label.shape, tf.int32),
            tf.TensorSpec(label.shape, tf.float32),
        )

        def generate() -> Iterator[Any]:
            for i in order.epoch(epoch):
                s = ds[int(i)]
                y, w = keras_weights(s["label"], build.ignore_index, weights)
                yield s["image"].astype(np.float32), y, w
    else:
        signature = {
            "image": tf.TensorSpec(image.shape, TF_DTYPES[image.dtype]),
            "label": tf.TensorSpec(label.shape, TF_DTYPES[label.dtype]),
            "key": tf.TensorSpec((), tf.string),
        }

        def generate() -> Iterator[Any]:
            for i in order.epoch(epoch):
                s = ds[int(i)]
                yield {"image": s["image"], "label": s["label"], "key": s["key"]}

    return tf.data.Dataset.from_generator(generate, output_signature=signature)
