"""Every photometric augmentation against its reference computed independently in numpy (OpenCV for
the blur), on u8, u16 and f32 images of 1, 3 and 5 bands, from the parameters each copy records.

References (docs/pipeline.md says the same): brightness adds b x full range (albumentations'
RandomBrightnessContrast with brightness_by_max); contrast scales around each band's mean
(torchvision's adjust_contrast blends with the grey mean; segprep pivots per band, so any band
count works); gamma is R x (x / R)^g (torchvision's adjust_gamma, gain 1); hue turns the chroma
plane of YIQ by h of a turn and saturation scales it (3-band images only); noise adds gaussian
values of sd n x R (albumentations' GaussNoise; checked by its statistics, the draws being
segprep's); blur is OpenCV's GaussianBlur with a kernel of 2 ceil(3 sigma) + 1, reflect-101 edges.
Integer results round half up and saturate; f32 images (taken as 0..1) are not clipped."""

import json
import math

import cv2
import numpy as np
import pytest

from conftest import build_generated
from tiffwrite import write_tiff

RANGE = {"u1": 255.0, "u2": 65535.0, "f4": 1.0}
DTYPES = {"u1": np.uint8, "u2": np.uint16, "f4": np.float32}
# (integer levels, f32) allowed between segprep's f32 arithmetic and the float64 reference
TOLERANCE = {"u1": 1, "u2": 1, "f4": 2e-5}


def images(tmp, dtype, bands, count=3, size=(24, 20)):
    """Mid-range random images (so brightness and noise rarely saturate) and all-zero labels."""
    rng = np.random.default_rng(bands * 7 + len(dtype))
    (tmp / "images").mkdir()
    (tmp / "labels").mkdir()
    w, h = size
    for i in range(count):
        unit = rng.uniform(0.2, 0.8, (h, w, bands))
        if dtype == "f4":
            pixels = unit.astype(np.float32)
        else:
            pixels = np.round(unit * RANGE[dtype]).astype(DTYPES[dtype])
        write_tiff(tmp / "images" / f"s{i}.tif", pixels)
        write_tiff(tmp / "labels" / f"s{i}.tif", np.zeros((h, w), np.uint8))


def augmented(tmp, dtype, bands, op):
    """(original, copy, recorded photometric values) for every sample of a one-op augment build."""
    images(tmp, dtype, bands)
    out = build_generated(tmp, 2, f"[[stage]]\naugment = {{ copies = 1, seed = 5, {op} }}\n")
    d = np.load(out / "train-00000-of-00001.npz")
    by_key = {str(k): i for i, k in enumerate(d["key"])}
    found = []
    for key, i in by_key.items():
        if "@" in key:
            original = d["image"][by_key[key.split("@")[0]]]
            drawn = json.loads(str(d["augment"][i]))["photometric"]
            found.append((original, d["image"][i], drawn))
    assert len(found) == 3
    return found


def finish(y, dtype):
    """Rounded half up and saturated, as segprep stores integer images; f32 as is."""
    if dtype == "f4":
        return y
    return np.clip(np.floor(y + 0.5), 0, RANGE[dtype])


def assert_close(got, want, dtype, what):
    """Within the tolerance everywhere, and integer results off by a level at most at 1% of the
    values (where the float64 reference and segprep's f32 land on two sides of a rounding edge)."""
    diff = np.abs(got.astype(np.float64) - want)
    assert diff.max() <= TOLERANCE[dtype], f"{what}: max {diff.max()}, mean {diff.mean()}"
    if dtype != "f4":
        assert (diff > 0).mean() <= 0.01, f"{what}: {(diff > 0).mean():.2%} of values differ"


def brightness(x, p, r):
    return x + p["brightness"] * r


def contrast(x, p, r):
    mean = x.reshape(-1, x.shape[-1]).mean(axis=0)
    return (x - mean) * p["contrast"] + mean


def gamma(x, p, r):
    return r * (np.maximum(x, 0) / r) ** p["gamma"]


def yiq(x, p, r):
    if x.shape[-1] != 3:
        return x
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])
    turn = 2 * math.pi * (p["hue"] or 0.0)
    s = 1.0 if p["saturation"] is None else p["saturation"]
    rotate = np.array(
        [[1, 0, 0], [0, s * math.cos(turn), -s * math.sin(turn)], [0, s * math.sin(turn), s * math.cos(turn)]]
    )
    return x @ (from_yiq @ rotate @ to_yiq).T


def blur(x, p, r):
    sigma = p["blur"]
    k = 2 * math.ceil(3 * sigma) + 1
    bands = [
        cv2.GaussianBlur(x[..., b], (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
        for b in range(x.shape[-1])
    ]
    return np.stack(bands, axis=-1)


OPS = {
    "brightness = [-0.2, 0.3]": brightness,
    "contrast = [0.5, 1.8]": contrast,
    "gamma = [0.5, 2.0]": gamma,
    "hue = [-0.3, 0.3]": yiq,
    "saturation = [0.2, 1.8]": yiq,
    "hue = [0.05, 0.2], saturation = [0.5, 1.5]": yiq,
    "blur = [0.6, 1.6]": blur,
}


@pytest.mark.parametrize("bands", [1, 3, 5])
@pytest.mark.parametrize("dtype", ["u1", "u2", "f4"])
@pytest.mark.parametrize("op", list(OPS))
def test_photometric_op_equals_its_reference(tmp_path, op, dtype, bands):
    for original, copy, drawn in augmented(tmp_path, dtype, bands, op):
        x = original.astype(np.float64)
        want = finish(OPS[op](x, drawn, RANGE[dtype]), dtype)
        assert copy.dtype == original.dtype
        assert_close(copy, want, dtype, f"{op} {dtype} {bands} bands {drawn}")


@pytest.mark.parametrize("dtype", ["u1", "u2", "f4"])
def test_noise_has_the_recorded_spread_and_no_bias(tmp_path, dtype):
    for original, copy, drawn in augmented(tmp_path, dtype, 3, "noise = [0.02, 0.05]"):
        diff = copy.astype(np.float64) - original
        sd = drawn["noise"] * RANGE[dtype]
        n = diff.size
        assert abs(diff.mean()) < 4 * sd / math.sqrt(n), (diff.mean(), sd)
        # integer rounding adds a uniform error of variance 1/12 of a level
        rounding = 0.0 if dtype == "f4" else 1 / 12
        assert diff.std() == pytest.approx(math.sqrt(sd**2 + rounding), rel=0.1), (diff.std(), sd)
        assert not (diff == 0).all()
