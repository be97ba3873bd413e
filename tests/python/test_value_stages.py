"""standardize (per_image, fixed, dataset) and rescale on 16-bit and f32 bands of 1, 3 and 5 bands,
against numpy's computation in float64: standardized values are (x - mean) / std computed in
float64 and stored as float32; rescale maps [low, high] linearly onto 0..1 (clipped), f32 as is or
times 255 rounded half up to u8."""

import json
import subprocess

import numpy as np
import pytest

from conftest import BIN, load_index
from tiffwrite import write_tiff

SPLIT = "[split]\ntrain = 0.5\nval = 0.5\nseed = 2\n"


def dataset(tmp, dtype, bands, count=4, size=(18, 14)):
    """Random bands (16-bit over most of the range, or f32 around 0..1), all-zero labels."""
    rng = np.random.default_rng(bands * 13 + (dtype == "f4"))
    (tmp / "images").mkdir()
    (tmp / "labels").mkdir()
    w, h = size
    arrays = {}
    for i in range(count):
        if dtype == "u2":
            x = rng.integers(0, 60000, (h, w, bands)).astype(np.uint16)
        else:
            x = rng.normal(0.5, 0.3, (h, w, bands)).astype(np.float32)
        write_tiff(tmp / "images" / f"s{i}.tif", x)
        write_tiff(tmp / "labels" / f"s{i}.tif", np.zeros((h, w), np.uint8))
        arrays[f"s{i}"] = x
    return arrays


def run(tmp, stage, split=""):
    text = (
        '[input]\nimages = "images"\nlabels = "labels"\n[labels]\nformat = "index"\nnum_classes = 2\n'
        f'[[stage]]\n{stage}\n{split}[output]\ndir = "out"\n'
    )
    (tmp / "p.toml").write_text(text)
    r = subprocess.run([str(BIN), "build", "p.toml"], cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    found = {}
    for f in sorted((tmp / "out").glob("*.npz")):
        d = np.load(f)
        for i, k in enumerate(d["key"]):
            extra = {n: d[n][i] for n in ("image_mean", "image_std") if n in d.files}
            found[str(k)] = (d["image"][i], extra, f.name.split("-")[0])
    return found


CASES = [(dtype, bands) for dtype in ("u2", "f4") for bands in (1, 3, 5)]


@pytest.mark.parametrize(("dtype", "bands"), CASES)
def test_per_image_standardize_equals_numpy(tmp_path, dtype, bands):
    arrays = dataset(tmp_path, dtype, bands)
    for key, (got, extra, _) in run(tmp_path, 'standardize = { mode = "per_image" }').items():
        x = arrays[key].astype(np.float64)
        h, w = x.shape[:2]
        mean, std = x.mean(), max(x.std(), 1 / np.sqrt(h * w))
        assert extra["image_mean"] == pytest.approx(mean, rel=1e-12)
        assert extra["image_std"] == pytest.approx(std, rel=1e-12)
        np.testing.assert_allclose(got, ((x - mean) / std).astype(np.float32), rtol=1e-6, atol=1e-6)
        assert got.dtype == np.float32


@pytest.mark.parametrize(("dtype", "bands"), CASES)
def test_fixed_standardize_equals_numpy(tmp_path, dtype, bands):
    arrays = dataset(tmp_path, dtype, bands)
    mean = [0.25 + 1000 * b for b in range(bands)]
    std = [0.5 + 300 * b for b in range(bands)]
    found = run(tmp_path, f'standardize = {{ mode = "fixed", mean = {json.dumps(mean)}, std = {json.dumps(std)} }}')
    for key, (got, _, _) in found.items():
        want = ((arrays[key].astype(np.float64) - mean) / std).astype(np.float32)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("dtype", "bands"), CASES)
def test_dataset_standardize_measures_the_train_split_per_band(tmp_path, dtype, bands):
    arrays = dataset(tmp_path, dtype, bands)
    found = run(tmp_path, 'standardize = { mode = "dataset" }', SPLIT)
    train = np.stack([arrays[k] for k, (_, _, split) in found.items() if split == "train"]).astype(np.float64)
    assert 0 < len(train) < len(arrays)
    mean = train.reshape(-1, bands).mean(axis=0)
    std = train.reshape(-1, bands).std(axis=0)
    recorded = next(s for s in load_index(tmp_path / "out")["stages"] if s["stage"] == "standardize")
    np.testing.assert_allclose(recorded["mean"], mean, rtol=1e-9)
    np.testing.assert_allclose(recorded["std"], std, rtol=1e-9)
    for key, (got, _, _) in found.items():
        want = ((arrays[key].astype(np.float64) - recorded["mean"]) / recorded["std"]).astype(np.float32)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("per_band", [False, True])
@pytest.mark.parametrize("output", ["u8", "f32"])
@pytest.mark.parametrize(("dtype", "bands"), CASES)
def test_rescale_equals_numpy(tmp_path, dtype, bands, output, per_band):
    arrays = dataset(tmp_path, dtype, bands)
    if dtype == "u2":
        ranges = [[1000.0 + 500 * b, 50000.0 - 700 * b] for b in range(bands)]
    else:
        ranges = [[0.1 + 0.02 * b, 0.9 - 0.03 * b] for b in range(bands)]
    if not per_band:
        ranges = ranges[:1]
    written = json.dumps(ranges if per_band else ranges[0])
    found = run(tmp_path, f'rescale = {{ input_range = {written}, output = "{output}" }}')
    lo, hi = np.array(ranges).T
    for key, (got, _, _) in found.items():
        unit = np.clip((arrays[key].astype(np.float64) - lo) / (hi - lo), 0, 1)
        if output == "f32":
            np.testing.assert_allclose(got, unit.astype(np.float32), rtol=0, atol=1e-7)
            assert got.dtype == np.float32
        else:
            want = np.floor(unit * 255 + 0.5)
            diff = np.abs(got.astype(np.float64) - want)
            assert got.dtype == np.uint8 and diff.max() <= 1 and (diff > 0).mean() <= 0.01, diff.max()
        assert (got >= 0).all()
