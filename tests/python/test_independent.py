"""segprep against independent implementations: numpy for colour mapping and counts, Pillow for
geometry, numpy for Segmentation Gym's standardization, Gym's own loading logic for its layout."""

import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED, build, load_index, map_colours_numpy, quintal_head, read_colour_table, stacked


def counts_numpy(label_ids, n_classes):
    """Per class: pixels, images containing it, labelled pixels of those images."""
    pixels = np.zeros(n_classes, np.int64)
    images = np.zeros(n_classes, np.int64)
    image_pixels = np.zeros(n_classes, np.int64)
    for ids in label_ids:
        c = np.bincount(ids.ravel(), minlength=n_classes)
        pixels += c
        present = c > 0
        images += present
        image_pixels += present * ids.size
    return pixels, images, image_pixels


def check_mapping_and_counts(tmp, head, label_dir, colors):
    out = build(tmp, head + '[output]\ndir = "out"\n')
    table, names = read_colour_table(colors)
    keys = stacked(out, "train", "key")
    labels = stacked(out, "train", "label")
    expected = [map_colours_numpy(label_dir / f"{k}_L.png", table) for k in keys]
    for k, got, want in zip(keys, labels, expected):
        assert np.array_equal(got, want), f"{k}: segprep's colour mapping differs from numpy's"
    stats = __import__("json").loads((out / "stats.json").read_text())["splits"]["train"]
    pixels, images, image_pixels = counts_numpy(expected, len(names))
    for c in stats["classes"]:
        i = c["id"]
        assert c["name"] == names[i]
        assert (c["pixels"], c["images"], c["image_pixels"]) == (pixels[i], images[i], image_pixels[i]), c["name"]
    assert stats["labelled_pixels"] == sum(x.size for x in expected)
    assert stats["ignore_pixels"] == stats["pad_pixels"] == stats["unknown_pixels"] == 0
    return pixels


def test_colour_mapping_and_counts_on_the_fixture(quintal):
    tmp, head = quintal
    pixels = check_mapping_and_counts(tmp, head, tmp / "q" / "labelsRGB", tmp / "q" / "label_colors.txt")
    assert (pixels > 0).all(), "the six fixture pairs cover all 11 classes"


def test_colour_mapping_and_counts_on_shared_quintal(tmp_path):
    src = SHARED / "quintal"
    if not src.is_dir():
        pytest.skip(f"extended check: {src} is absent (it ships beside the repository as shared/data)")
    head = quintal_head(src / "stills", src / "labelsRGB", src / "label_colors.txt")
    check_mapping_and_counts(tmp_path, head, src / "labelsRGB", src / "label_colors.txt")


def pillow_ids(label_dir, key, table, size, resample):
    ids = map_colours_numpy(label_dir / f"{key}_L.png", table).astype(np.int32)
    return np.asarray(Image.fromarray(ids, mode="I").resize(size, resample=resample))


def exact_border_lines(src, dst):
    """Destination rows/columns whose pixel centre maps exactly onto a source pixel border:
    (x + 0.5) * src / dst is an integer. segprep computes that in integers and takes the pixel
    after the border; Pillow accumulates floats and may land just below it."""
    x = np.arange(dst)
    return ((2 * x + 1) * src) % (2 * dst) == 0


@pytest.mark.parametrize("size", [(200, 150), (97, 301), (512, 512), (64, 64)])
def test_resize_agrees_with_pillow(quintal, size):
    """Labels: nearest at pixel centres, as Pillow's NEAREST: equal everywhere except on rows and
    columns whose centre falls exactly on a source pixel border (see exact_border_lines).
    Images: bilinear convolution, as Pillow's BILINEAR, within a mean absolute difference of 0.3
    grey levels and at most 1 anywhere (fixed-point rounding in both libraries; measured: mean
    0.13 to 0.23, max 1)."""
    tmp, head = quintal
    stage = f'[[stage]]\nresize = {{ size = [{size[0]}, {size[1]}], filter = "bilinear" }}\n'
    out = build(tmp, head + stage + '[output]\ndir = "out"\n')
    table, _ = read_colour_table(tmp / "q" / "label_colors.txt")
    keys, labels, images = (stacked(out, "train", n) for n in ("key", "label", "image"))
    border = exact_border_lines(256, size[1])[:, None] | exact_border_lines(256, size[0])[None, :]
    for k, lab, img in zip(keys, labels, images):
        want = pillow_ids(tmp / "q" / "labelsRGB", k, table, size, Image.NEAREST)
        assert lab.shape == want.shape == (size[1], size[0])
        differ = lab != want
        assert not (differ & ~border).any(), (
            f"{k}: {(differ & ~border).sum()} label pixels differ from Pillow off the exact borders"
        )
        src = Image.open(tmp / "q" / "stills" / f"{k}.png").convert("RGB")
        ref = np.asarray(src.resize(size, resample=Image.BILINEAR)).astype(np.float64)
        diff = np.abs(img.astype(np.float64) - ref)
        assert diff.mean() <= 0.3 and diff.max() <= 1, f"{k}: mean {diff.mean():.3f}, max {diff.max()}"


def gym_standardize(img):
    """Segmentation Gym's standardize(): (x - mean) / max(std, 1/sqrt(N)), N = rows * cols."""
    n = np.shape(img)[0] * np.shape(img)[1]
    s = np.maximum(np.std(img), 1.0 / np.sqrt(n))
    m = np.mean(img)
    return (img - m) / s


def test_per_image_standardize_equals_gyms_formula(quintal):
    tmp, head = quintal
    raw = build(tmp, head + '[output]\ndir = "out"\n')
    raw_images = stacked(raw, "train", "image")
    shutil.rmtree(raw)
    out = build(tmp, head + '[[stage]]\nstandardize = { mode = "per_image" }\n[output]\ndir = "out"\n')
    got = stacked(out, "train", "image")
    assert got.dtype == np.float32
    means, stds = stacked(out, "train", "image_mean"), stacked(out, "train", "image_std")
    for x, y, m, s in zip(raw_images, got, means, stds):
        want = gym_standardize(x.astype(np.float64))
        np.testing.assert_allclose(y, want, rtol=0, atol=1e-5)
        assert m == pytest.approx(np.mean(x), abs=1e-9) and s == pytest.approx(np.std(x), rel=1e-12)


def test_dataset_standardize_uses_train_split_per_band(quintal):
    tmp, head = quintal
    split = "[split]\ntrain = 0.67\nval = 0.33\nseed = 1\n"
    raw = build(tmp, head + split + '[output]\ndir = "out"\n')
    train = stacked(raw, "train", "image").astype(np.float64)
    val = stacked(raw, "val", "image").astype(np.float64)
    shutil.rmtree(raw)
    out = build(tmp, head + '[[stage]]\nstandardize = { mode = "dataset" }\n' + split + '[output]\ndir = "out"\n')
    st = next(s for s in load_index(out)["stages"] if s["stage"] == "standardize")
    mean, std = train.reshape(-1, 3).mean(axis=0), train.reshape(-1, 3).std(axis=0)
    np.testing.assert_allclose(st["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(st["std"], std, rtol=1e-9)
    np.testing.assert_allclose(stacked(out, "val", "image"), (val - mean) / std, atol=1e-5)


def gym_load_npz(path):
    """What Segmentation Gym's load_npz does with a file (minus its own standardize)."""
    with np.load(path) as data:
        image = data["arr_0"].astype("uint8")
        label = data["arr_1"].astype("uint8")
        file = ["".join(f) for f in data["files"]]
        num_bands = int(data["num_bands"])
    return image, label, file[0], num_bands


def test_gym_layout_reads_like_gym(quintal):
    tmp, head = quintal
    stages = '[[stage]]\nresize = { size = [128, 96], mode = "fit" }\n[split]\ntrain = 0.67\nval = 0.33\n'
    stacked_out = build(tmp, head + stages + '[output]\ndir = "out"\n')
    want_labels = {s: stacked(stacked_out, s, "label") for s in ("train", "val")}
    want_images = {s: stacked(stacked_out, s, "image") for s in ("train", "val")}
    gym = build(
        tmp,
        head
        + stages
        + '[output]\ndir = "gym"\nlayout = "gym"\ngym_root = "quintal"\n'.replace('dir = "gym"', 'dir = "gymout"'),
    )
    gym = tmp / "gymout"
    for split in ("train", "val"):
        files = sorted((gym / f"{split}_data" / f"{split}_npzs").glob("quintal_noaug_nd_data_*.npz"))
        assert len(files) == len(want_labels[split])
        for i, f in enumerate(files):
            image, onehot, name, bands = gym_load_npz(f)
            assert image.shape == (96, 128, 3) and bands == 3 and name.endswith(".png")
            assert onehot.shape == (96, 128, 11)
            assert np.array_equal(image, want_images[split][i])
            lab = want_labels[split][i]
            labelled = lab != 255
            assert np.array_equal(np.argmax(onehot, -1)[labelled], lab[labelled])
            assert (onehot[~labelled] == 0).all(), "ignore pixels are all-zero one-hot rows"
            assert (onehot.sum(-1)[labelled] == 1).all()
