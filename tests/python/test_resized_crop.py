"""random_resized_crop follows torchvision's RandomResizedCrop.get_params: up to ten draws of an
area fraction from `scale` and a log-uniform aspect ratio from `ratio`, w = round(sqrt(area *
ratio)), h = round(sqrt(area / ratio)), kept when it fits, at a uniform position; else the centre
crop at the nearest allowed ratio. The boxes segprep records over many copies are compared with
that rule re-implemented here (two-sample Kolmogorov-Smirnov on width, height, x and y), the
fallback with its box, and the pixels with Pillow's bilinear resize of the recorded box (and with
OpenCV's INTER_LINEAR where the box is enlarged: OpenCV does not smooth when it shrinks)."""

import json
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import build_generated

SIZE = (64, 48)


def torchvision_box(rng, width, height, scale, ratio):
    """get_params, written from torchvision's documented rule (numpy's generator for its draws)."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return rng.integers(0, width - w + 1), rng.integers(0, height - h + 1), w, h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        w, h = round(height * max(ratio)), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def ks_statistic(a, b):
    a, b = np.sort(a), np.sort(b)
    values = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, values, side="right") / len(a)
    cdf_b = np.searchsorted(b, values, side="right") / len(b)
    return np.abs(cdf_a - cdf_b).max()


def crops(tmp, size, stage, count=4):
    rng = np.random.default_rng(3)
    (tmp / "images").mkdir()
    (tmp / "labels").mkdir()
    w, h = size
    originals = {}
    for i in range(count):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(img).save(tmp / "images" / f"s{i}.png")
        Image.fromarray(rng.integers(0, 3, (h, w), dtype=np.uint8)).save(tmp / "labels" / f"s{i}.png")
        originals[f"s{i}"] = img
    out = build_generated(tmp, 3, f"[[stage]]\naugment = {stage}\n")
    d = np.load(out / "train-00000-of-00001.npz")
    drawn = [json.loads(str(a)) for a in d["augment"]]
    return originals, [str(k) for k in d["key"]], d["image"], d["label"], drawn


def test_boxes_follow_torchvisions_rule(tmp_path):
    stage = "{ copies = 500, seed = 9, keep_original = false, random_resized_crop = { size = [32, 32] } }"
    _, _, _, _, drawn = crops(tmp_path, SIZE, stage)
    got = np.array([p["crop"] for p in drawn], dtype=np.float64)
    assert len(got) == 2000
    rng = np.random.default_rng(0)
    want = np.array([torchvision_box(rng, *SIZE, (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(20000)], float)
    # the 0.1% critical value of the two-sample statistic
    bound = 1.95 * math.sqrt((len(got) + len(want)) / (len(got) * len(want)))
    for column, name in enumerate(["x", "y", "width", "height"]):
        d = ks_statistic(got[:, column], want[:, column])
        assert d < bound, f"{name}: KS {d:.4f} >= {bound:.4f}"
    assert (got[:, 0] + got[:, 2] <= SIZE[0]).all() and (got[:, 1] + got[:, 3] <= SIZE[1]).all()


@pytest.mark.parametrize(("size", "box"), [((100, 10), [43, 0, 13, 10]), ((10, 100), [0, 43, 10, 13])])
def test_when_no_draw_fits_the_centre_crop_has_the_nearest_allowed_ratio(tmp_path, size, box):
    """A 10:1 image and areas of 90-100% with ratios of 3/4-4/3: no draw fits in ten tries."""
    stage = (
        "{ copies = 5, seed = 1, keep_original = false, random_resized_crop = { size = [16, 16], scale = [0.9, 1.0] } }"
    )
    _, _, _, _, drawn = crops(tmp_path, size, stage, count=2)
    want = list(torchvision_box(np.random.default_rng(0), *size, (0.9, 1.0), (3 / 4, 4 / 3)))
    assert want == box
    assert all(p["crop"] == box for p in drawn), [p["crop"] for p in drawn]


def test_crop_pixels_equal_pillows_bilinear_resize_of_the_box(tmp_path):
    stage = "{ copies = 10, seed = 4, keep_original = false, random_resized_crop = { size = [40, 30] } }"
    originals, keys, images, labels, drawn = crops(tmp_path, SIZE, stage)
    enlarged = 0
    for key, image, label, p in zip(keys, images, labels, drawn):
        x, y, w, h = p["crop"]
        box = Image.fromarray(originals[key.split("@")[0]][y : y + h, x : x + w])
        want = np.asarray(box.resize((40, 30), resample=Image.BILINEAR)).astype(np.float64)
        diff = np.abs(image.astype(np.float64) - want)
        assert diff.mean() <= 0.3 and diff.max() <= 1, f"{key}: mean {diff.mean():.3f}, max {diff.max()}"
        if w <= 40 and h <= 30:
            # enlarging, bilinear is the same filter in OpenCV (it smooths nothing when shrinking)
            cv = cv2.resize(np.ascontiguousarray(np.asarray(box)), (40, 30), interpolation=cv2.INTER_LINEAR)
            diff = np.abs(image.astype(np.float64) - cv)
            assert diff.mean() <= 0.3 and diff.max() <= 1, f"{key} vs OpenCV: mean {diff.mean():.3f}, max {diff.max()}"
            enlarged += 1
        assert set(np.unique(label)) <= {0, 1, 2}
    assert enlarged > 0
