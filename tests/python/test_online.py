"""`segprep.Pipeline`: the pipeline live in a data loader. Every copy a build writes comes out of
`sample` with the same bytes (in this process and in forked and spawned workers), epochs draw
fresh copies that repeat for the same epoch, batches on segprep's threads equal samples one by one,
bad input raises what the command prints, and Keras trains on it for two epochs."""

import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

import segprep

from conftest import BIN, REPO, load_index, quintal_head, shards
from conftest import segprep as run_segprep

EXAMPLES = sorted(
    p.stem
    for p in (REPO / "pipelines").glob("*.toml")
    if p.stem != "template" and any("augment" in s for s in tomllib.loads(p.read_text()).get("stage", []))
)

QUINTAL_AUGMENT = """
[[stage]]
resize = { size = [64, 48], mode = "fit" }
[[stage]]
augment = { copies = 2, hflip = 0.5, rotate = [-15, 15], brightness = [-0.1, 0.1], seed = 5 }
[split]
train = 0.67
val = 0.33
seed = 7
[output]
dir = "out"
"""


def built_rows(out):
    """(key, copy) -> (image bytes, label bytes, augment text, image_mean) of every built sample."""
    rows = {}
    for path in shards(out):
        d = np.load(path)
        for i, full in enumerate(d["key"]):
            key, _, copy = str(full).partition("@")
            mean = float(d["image_mean"][i]) if "image_mean" in d else None
            rows[(key, int(copy or 0))] = (d["image"][i].tobytes(), d["label"][i].tobytes(), str(d["augment"][i]), mean)
    return rows


def made_rows(pipeline, wanted):
    """The same, made live by `pipeline` for each (key, copy)."""
    made = {}
    for key, copy in wanted:
        s = pipeline._native.sample(key, copy)
        made[(key, copy)] = (bytes(s["image"]), bytes(s["label"]), s["augment"], s["image_mean"])
    return made


def test_the_examples_that_augment_are_tested():
    assert {"dsb2018", "multiband"} <= set(EXAMPLES), EXAMPLES


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_copy_of_an_example_build_is_made_live_with_its_bytes(name, tmp_path):
    pipeline_file = REPO / "pipelines" / f"{name}.toml"
    r = run_segprep("build", pipeline_file, "--out", tmp_path / "out", cwd=REPO)
    assert r.returncode == 0, r.stderr
    built = built_rows(tmp_path / "out")
    live = segprep.Pipeline(pipeline_file)
    assert made_rows(live, built) == built
    assert any(copy > 0 for _, copy in built), "the build has augmented copies"
    # the public arrays: dtypes and shapes as the build's reader gives them
    build = segprep.open(tmp_path / "out")
    for split in build.splits:
        for stored in build[split]:
            key, _, copy = stored["key"].partition("@")
            sample = live.sample(key, int(copy or 0))
            assert sample["key"] == stored["key"]
            for array in ("image", "label"):
                assert sample[array].dtype == stored[array].dtype and np.array_equal(sample[array], stored[array])
            assert sample.get("augment") == stored.get("augment"), stored["key"]
        assert live.keys(split) == [s["key"] for s in build[split] if "@" not in s["key"]], "the build's order"


def test_a_pickled_pipeline_keeps_its_dataset_standardization(tmp_path):
    """A spawned worker gets the measured moments with the pipeline: the same samples, and the
    train split is not measured again (here: its images are gone when it is unpickled)."""
    work = tmp_path / "work"
    shutil.copytree(REPO / "pipelines", work / "pipelines")
    shutil.copytree(REPO / "fixtures" / "multiband", work / "fixtures" / "multiband")
    live = segprep.Pipeline(work / "pipelines" / "multiband.toml")
    moments = live._native.dataset_moments()
    assert moments is not None and len(moments) == 6, moments
    key = live.keys("val")[0]
    want = live.sample(key)["image"]
    state = pickle.dumps(live)
    for image in (work / "fixtures" / "multiband" / "rgb").iterdir():
        if live._split_of.get(image.stem) == "train":
            image.write_bytes(b"gone")
    again = pickle.loads(state)
    assert again._native.dataset_moments() == moments
    assert again.sample(key)["image"].tobytes() == want.tobytes()


@pytest.fixture
def quintal_pipeline(quintal):
    tmp, head = quintal
    (tmp / "p.toml").write_text(head + QUINTAL_AUGMENT)
    return tmp / "p.toml"


def digests(pipeline, keys, copy):
    return [
        {k: (v.tobytes() if isinstance(v, np.ndarray) else v) for k, v in pipeline.sample(key, copy).items()}
        for key in keys
    ]


def made_in_worker(pipeline, keys, copy):
    return digests(pipeline, keys, copy)


_INHERITED = {}


def made_in_forked_worker(keys, copy):
    pipeline = _INHERITED["pipeline"]
    return digests(pipeline, keys, copy), pipeline.batch(keys, copy)["image"].tobytes()


def test_forked_and_spawned_workers_make_the_same_samples(quintal_pipeline):
    live = segprep.Pipeline(quintal_pipeline, threads=2)
    keys = live.keys("train")
    want = digests(live, keys, 3)
    # the parent's batch pool exists before the fork: a child must not use it
    batch = live.batch(keys, 3)["image"].tobytes()
    _INHERITED["pipeline"] = live
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.starmap(made_in_forked_worker, [(keys, 3), (keys, 3)])
    for made, made_batch in results:
        assert made == want and made_batch == batch
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.starmap(made_in_worker, [(live, keys, 3)]) == [want]


def test_epochs_draw_fresh_copies_that_repeat_and_start_with_the_builds(quintal_pipeline):
    live = segprep.Pipeline(quintal_pipeline)
    train = live.dataset("train", epoch=0)
    first = [s["image"].tobytes() for s in train]
    assert [s["key"] for s in train] == [f"{k}@1" for k in live.keys("train")], "epoch 0 is copy 1"
    later = []
    for epoch in (1, 2, 3):
        train.set_epoch(epoch)
        later.append([s["image"].tobytes() for s in train])
        assert train[0]["key"].endswith(f"@{epoch + 1}")
    for images in later:
        assert all(a != b for a, b in zip(images, first)), "each epoch draws every key anew"
    assert [s["image"].tobytes() for s in live.dataset("train", epoch=2)] == later[1], "an epoch repeats"
    val = live.dataset("val", epoch=5)
    assert val.copy == 0 and "@" not in val[0]["key"], "a split that is not augmented gives itself"
    with pytest.raises(ValueError, match="no augmented copies"):
        live.sample(live.keys("val")[0], 1)


def test_a_batch_on_segprep_threads_equals_the_samples_for_any_thread_count(quintal_pipeline):
    keys = segprep.Pipeline(quintal_pipeline).keys("train")
    batches = []
    for threads in (1, 2):
        live = segprep.Pipeline(quintal_pipeline, threads=threads)
        batch = live.batch(keys[::-1], 4)
        batches.append(batch["image"].tobytes() + batch["label"].tobytes())
        one_by_one = [live.sample(k, 4) for k in keys[::-1]]
        assert np.array_equal(batch["image"], np.stack([s["image"] for s in one_by_one]))
        assert batch["key"] == [s["key"] for s in one_by_one]
        assert batch["augment"] == [s["augment"] for s in one_by_one]
    assert batches[0] == batches[1]


def test_memory_stays_flat_over_epochs(quintal_pipeline):
    live = segprep.Pipeline(quintal_pipeline, threads=2)
    keys = live.keys("train")

    def rss():
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    for epoch in range(3):
        live.batch(keys, epoch + 1)
    warm = rss()
    for epoch in range(3, 40):
        live.batch(keys, epoch + 1)
        live.sample(keys[0], epoch + 1)
    assert rss() - warm < 16 << 20, f"{(rss() - warm) >> 20} MiB more after 37 epochs"


def test_bad_input_raises_what_the_command_prints(quintal):
    from PIL import Image

    tmp, head = quintal
    (tmp / "p.toml").write_text(head + QUINTAL_AUGMENT)
    keys = segprep.Pipeline(tmp / "p.toml").keys("train")
    image = tmp / "q" / "stills" / f"{keys[0]}.png"
    label = tmp / "q" / "labelsRGB" / f"{keys[1]}_L.png"

    def cut(path):
        path.write_bytes(path.read_bytes()[:300])

    def unknown_colour(path):
        rgb = np.asarray(Image.open(path).convert("RGB")).copy()
        rgb[0, 0] = (1, 2, 3)
        Image.fromarray(rgb).save(path)

    for key, path, fault, why in ((keys[0], image, cut, "cannot decode"), (keys[1], label, unknown_colour, "colour")):
        original = path.read_bytes()
        fault(path)
        printed = run_segprep("build", "p.toml", cwd=tmp).stderr
        with pytest.raises(segprep.DataError) as caught:
            segprep.Pipeline(tmp / "p.toml").sample(key, 1)
        e = caught.value
        assert Path(e.file).resolve() == path.resolve() and why in e.reason
        relative = path.relative_to(tmp)
        assert f"error: {relative}: [{e.stage}] {e.reason}" in printed, f"{e}\n---\n{printed}"
        path.write_bytes(original)


def test_a_bad_pipeline_file_raises_its_problems(tmp_path):
    (tmp_path / "p.toml").write_text('[input]\nimages = "nowhere"\n[labels]\nformat = "index"\nnum_classes = 2\n')
    with pytest.raises(segprep.PipelineError) as caught:
        segprep.Pipeline(tmp_path / "p.toml")
    e = caught.value
    assert Path(e.file) == tmp_path / "p.toml" and any("missing field `output`" in p for p in e.problems), e


PREPARED_STAGES = """
[[stage]]
resize = { size = [64, 48], mode = "fit" }
[[stage]]
augment = { copies = 2, hflip = 0.5, rotate = [-15, 15], zoom = [0.9, 1.1], brightness = [-0.1, 0.1], seed = 5 }
[[stage]]
standardize = { mode = "per_image" }
[split]
train = 0.67
val = 0.33
seed = 7
[output]
dir = "out"
"""


def test_a_prepared_build_augmented_live_gives_the_bytes_of_decoding_again(quintal):
    tmp, head = quintal
    (tmp / "p.toml").write_text(head + PREPARED_STAGES)
    r = run_segprep("build", "p.toml", "--augment-online", cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert load_index(tmp / "out")["splits"]["train"]["samples"] == 4, "the originals alone"
    from_inputs = segprep.Pipeline(tmp / "p.toml")
    from_build = segprep.Pipeline(tmp / "p.toml", prepared=tmp / "out", threads=2)
    for split in ("train", "val"):
        keys = from_inputs.keys(split)
        copies = (0, 1, 2, 7) if split == "train" else (0,)
        for copy in copies:
            want, got = from_inputs.batch(keys, copy), from_build.batch(keys, copy)
            assert want.keys() == got.keys()
            for name in want:
                if isinstance(want[name], np.ndarray):
                    a, b = want[name], got[name]
                    assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (split, copy, name)
                else:
                    assert want[name] == got[name], (split, copy, name)
            one = from_build.sample(keys[-1], copy)
            assert one["image"].tobytes() == want["image"][-1].tobytes() and one["key"] == want["key"][-1]
    # a full build of the file is not a prepared one
    run_segprep("build", "p.toml", "--out", "full", cwd=tmp)
    with pytest.raises(segprep.BuildError, match="--augment-online"):
        segprep.Pipeline(tmp / "p.toml", prepared=tmp / "full")
    # the input images are not decoded again: cut, they still give the same samples
    keys = from_inputs.keys("train")
    want = from_inputs.batch(keys, 3)["image"].tobytes()
    for image in (tmp / "q" / "stills").iterdir():
        image.write_bytes(b"not an image")
    with pytest.raises(segprep.DataError):
        from_inputs.sample(keys[0], 3)
    assert from_build.batch(keys, 3)["image"].tobytes() == want


def test_the_keras_adapter_trains_two_epochs_online(quintal_pipeline):
    import keras

    import segprep.keras

    keras.utils.set_random_seed(0)
    live = segprep.Pipeline(quintal_pipeline)
    train = segprep.keras.PyDataset(
        live, "train", batch_size=2, class_weights="median", rescale=1 / 255, seed=0, workers=2
    )
    seen = []

    class Copies(keras.callbacks.Callback):
        def __init__(self, data):
            super().__init__()
            self.data = data

        def on_epoch_begin(self, epoch, logs=None):
            seen.append(self.data.split.copy)

    x, _, _ = train[0]
    inputs = keras.Input(x.shape[1:])
    hidden = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(live.num_classes, 1, activation="softmax")(hidden))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    history = model.fit(train, epochs=2, verbose=0, callbacks=[train.epochs_from_fit(), Copies(train)])
    assert all(np.isfinite(history.history["loss"])), history.history
    assert seen == [1, 2], "fit's epoch e trains on copy e + 1"
    # without the callback, the epochs move on at each epoch's end: still fresh copies every epoch
    free = segprep.keras.PyDataset(live, "train", batch_size=2, class_weights=None, rescale=1 / 255)
    seen.clear()
    model.fit(free, epochs=2, verbose=0, callbacks=[Copies(free)])
    assert len(seen) == 2 and seen[1] == seen[0] + 1, seen
    weights = live.class_weights("train", "median")
    assert weights.shape == (live.num_classes,) and (weights >= 0).all() and weights.any()


def test_a_torch_dataloader_with_forked_workers_completes_an_epoch(quintal_pipeline):
    torch = pytest.importorskip("torch", reason="extended check: torch is not in the test venv")
    from torch.utils.data import DataLoader

    import segprep.torch

    live = segprep.Pipeline(quintal_pipeline)
    data = segprep.torch.Dataset(live, "train")
    for epoch in (0, 1):
        data.set_epoch(epoch)
        loader = DataLoader(data, batch_size=2, num_workers=2, multiprocessing_context="fork")
        keys = [k for batch in loader for k in batch["key"]]
        assert keys == [f"{k}@{epoch + 1}" for k in live.keys("train")]
        assert isinstance(next(iter(loader))["image"], torch.Tensor)


def test_the_wheel_command_is_the_binary_entered_through_the_module(tmp_path):
    """The wheel's `segprep` (a console script calling `segprep._native.run_cli`) exits and
    writes as the cargo-built binary does."""
    command = Path(sys.executable).with_name("segprep")
    missing = subprocess.run([command, "check", tmp_path / "missing.toml"], capture_output=True, text=True)
    assert missing.returncode == 2 and "missing.toml" in missing.stderr
    outputs = []
    for name, program in (("wheel", command), ("binary", BIN)):
        work = tmp_path / name
        shutil.copytree(REPO / "fixtures" / "quintal", work / "q")
        (work / "p.toml").write_text(quintal_head("q/stills", "q/labelsRGB", "q/label_colors.txt") + QUINTAL_AUGMENT)
        r = subprocess.run([program, "build", "p.toml"], cwd=work, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("built 14 samples"), r.stdout
        outputs.append({p.name: p.read_bytes() for p in (work / "out").iterdir() if p.is_file()})
    assert outputs[0] == outputs[1]
