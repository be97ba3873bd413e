"""The Keras adapter in a real `model.fit`: a tiny U-Net on the quick-start build, JAX on the CPU,
class weights from stats.json, ignore and padding pixels weighted 0."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")


import keras
import numpy as np
import pytest

import segprep
import segprep.keras


@pytest.fixture(scope="module")
def quickstart(quickstart_work):
    return quickstart_work / "out" / "quickstart"


def tiny_unet(shape, classes):
    inputs = keras.Input(shape)
    down = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    deeper = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(keras.layers.MaxPooling2D()(down))
    up = keras.layers.UpSampling2D()(deeper)
    joined = keras.layers.Concatenate()([up, down])
    outputs = keras.layers.Conv2D(classes, 1, activation="softmax")(joined)
    return keras.Model(inputs, outputs)


def test_batches_weight_ignore_and_padding_pixels_zero(quickstart):
    build = segprep.open(quickstart)
    data = segprep.keras.PyDataset(build, "train", batch_size=2, class_weights="median", shuffle=False)
    x, y, weight = data[0]
    raw = build["train"][[0, 1]]
    ignored = raw["label"] == build.ignore_index
    assert ignored.any(), "the quick start pads to a multiple of 32 with the ignore index"
    assert x.dtype == np.float32 and np.array_equal(x, raw["image"].astype(np.float32))
    assert (weight[ignored] == 0).all() and (y[ignored] == 0).all()
    w = build.class_weights("train", "median")
    assert np.array_equal(weight[~ignored], w[raw["label"][~ignored]])
    assert np.array_equal(y[~ignored], raw["label"][~ignored])
    assert len(data) == (build.counts["train"] + 1) // 2


def test_a_tiny_unet_trains_two_epochs_and_its_loss_falls(quickstart):
    keras.utils.set_random_seed(0)
    build = segprep.open(quickstart)
    train = segprep.keras.PyDataset(build, "train", batch_size=2, class_weights="median", rescale=1 / 255, seed=0)
    x, _, _ = train[0]
    model = tiny_unet(x.shape[1:], build.num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    history = model.fit(train, epochs=2, verbose=0)
    losses = history.history["loss"]
    assert all(np.isfinite(losses)), losses
    assert losses[1] < losses[0], losses
