"""The elastic augmentation re-implemented in numpy from its documented definition and segprep's
documented random stream, then compared with the built copies: the label exactly (nearest at
round-half-up positions), the image within one level (bilinear).

Definition (docs/pipeline.md): for each copy, w*h uniform values u from the copy's stream (after
its 15 parameter draws) give dx = alpha * G_sigma(2u - 1), then w*h more give dy the same way
(Simard et al. 2003, as albumentations' ElasticTransform: smoothed uniform noise times alpha), G_sigma
a gaussian blur of radius ceil(3 sigma) with reflect-101 edges, in f32. Output pixel (x, y) takes the
source (x + dx, y + dy); outside the image the label is the ignore index and the image the fill.
The stream: SplitMix64 seeded with the first 8 bytes (little-endian) of
sha256("segprep-augment\\0" + seed as u64 LE + key + "\\0" + copy as u32 LE)."""

import hashlib
import json
import math

import numpy as np
from PIL import Image

from conftest import build_generated

MASK = (1 << 64) - 1
PARAMETER_DRAWS = 15  # hflip, vflip, rot90, rotate, zoom, shear, shift x2, seven photometric


class Stream:
    def __init__(self, seed, key, copy):
        digest = hashlib.sha256(
            b"segprep-augment\0" + seed.to_bytes(8, "little") + key.encode() + b"\0" + copy.to_bytes(4, "little")
        ).digest()
        self.state = int.from_bytes(digest[:8], "little")

    def units(self, n):
        out = np.empty(n, np.float64)
        for i in range(n):
            self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
            z = self.state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            z ^= z >> 31
            out[i] = (z >> 11) / float(1 << 53)
        return out


def reflect_101(i, n):
    i = np.where(i < 0, -i, i)
    return np.where(i >= n, 2 * n - 2 - i, i)


def blur_f32(x, sigma):
    """Separable gaussian in f32, taps summed in order, as the definition computes it."""
    h, w = x.shape
    r = math.ceil(3 * sigma)
    kernel = np.array([math.exp(-(i * i) / (2 * sigma * sigma)) for i in range(-r, r + 1)]).astype(np.float32)
    total = np.float32(0)
    for k in kernel:
        total = np.float32(total + k)
    kernel = (kernel / total).astype(np.float32)
    cols = np.arange(w)
    along_x = np.zeros_like(x)
    for k, wk in enumerate(kernel):
        along_x = (along_x + wk * x[:, reflect_101(cols + k - r, w)]).astype(np.float32)
    out = np.zeros_like(x)
    rows = np.arange(h)
    for k, wk in enumerate(kernel):
        out = (out + wk * along_x[reflect_101(rows + k - r, h), :]).astype(np.float32)
    return out


def field(stream, w, h, alpha, sigma):
    def one():
        raw = (2.0 * stream.units(w * h) - 1.0).astype(np.float32).reshape(h, w)
        return (blur_f32(raw, sigma) * np.float32(alpha)).astype(np.float32)

    return one(), one()


def test_elastic_copies_equal_the_definition(tmp_path):
    rng = np.random.default_rng(8)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    w, h = 40, 30
    originals = {}
    for i in range(3):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        lab = np.kron(rng.integers(0, 4, (6, 8)), np.ones((5, 5), np.uint8)).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / "images" / f"s{i}.png")
        Image.fromarray(lab).save(tmp_path / "labels" / f"s{i}.png")
        originals[f"s{i}"] = (img, lab)
    stage = "[[stage]]\naugment = { copies = 2, seed = 21, elastic = { alpha = 6, sigma = 2 } }\n"
    d = np.load(build_generated(tmp_path, 4, stage) / "train-00000-of-00001.npz")
    checked = 0
    for key, image, label, drawn in zip(d["key"], d["image"], d["label"], d["augment"]):
        key = str(key)
        if "@" not in key:
            continue
        base, copy = key.split("@")
        assert json.loads(str(drawn))["copy"] == int(copy)
        stream = Stream(21, base, int(copy))
        stream.units(PARAMETER_DRAWS)
        dx, dy = field(stream, w, h, 6.0, 2.0)
        sx = np.arange(w)[None, :] + dx.astype(np.float64)
        sy = np.arange(h)[:, None] + dy.astype(np.float64)
        img, lab = originals[base]
        ix, iy = np.floor(sx + 0.5).astype(int), np.floor(sy + 0.5).astype(int)
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        want_label = np.where(inside, lab[iy.clip(0, h - 1), ix.clip(0, w - 1)], 255)
        assert np.array_equal(label, want_label), f"{key}: {(label != want_label).sum()} label pixels differ"
        want_image = bilinear(img.astype(np.float64), sx, sy)
        diff = np.abs(image.astype(np.float64) - np.floor(want_image + 0.5))
        assert diff.max() <= 1 and (diff > 0).mean() <= 0.01, f"{key}: max {diff.max()}, {(diff > 0).mean():.2%}"
        assert np.abs(dx).max() > 0.5, "the field moves pixels"
        checked += 1
    assert checked == 6


def bilinear(img, sx, sy, fill=0.0):
    """Bilinear samples at (sx, sy); taps outside the image take `fill`."""
    h, w, _ = img.shape
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]

    def tap(x, y):
        inside = ((x >= 0) & (x < w) & (y >= 0) & (y < h))[..., None]
        return np.where(inside, img[y.clip(0, h - 1), x.clip(0, w - 1)], fill)

    top = tap(x0, y0) * (1 - fx) + tap(x0 + 1, y0) * fx
    bottom = tap(x0, y0 + 1) * (1 - fx) + tap(x0 + 1, y0 + 1) * fx
    return top * (1 - fy) + bottom * fy
