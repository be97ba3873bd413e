"""The augment stage against independent implementations: numpy for the exact moves (flips, 90°
turns, crops), OpenCV's warpAffine for rotation, shift, zoom and shear, using the parameters
recorded beside every copy; and the label-set and determinism rules."""

import json
import shutil

import cv2
import numpy as np

from conftest import build, segprep, shards


def samples(out):
    """key -> (image, label, drawn parameters) over every shard."""
    found = {}
    for p in shards(out):
        d = np.load(p)
        for k, img, lab, drawn in zip(d["key"], d["image"], d["label"], d["augment"]):
            found[str(k)] = (img, lab, json.loads(str(drawn)))
    return found


def copies(found):
    """(original, copy) pairs: every `key@n` with its `key`."""
    for key, value in found.items():
        if "@" in key:
            yield found[key.split("@")[0]], value


_runs = iter(range(1000))


def augmented(quintal, stage, size=96):
    tmp, head = quintal
    out = f"out{next(_runs)}"
    text = head + f'[[stage]]\nresize = {{ size = {size} }}\n[[stage]]\naugment = {stage}\n[output]\ndir = "{out}"\n'
    (tmp / "p.toml").write_text(text)
    r = segprep("build", "p.toml", cwd=tmp)
    assert r.returncode == 0, r.stderr
    return samples(tmp / out)


def test_flips_and_turns_are_exact(quintal):
    found = augmented(quintal, "{ copies = 4, hflip = 0.5, vflip = 0.5, rot90 = 0.7 }")
    moved = 0
    for (img0, lab0, _), (img, lab, d) in copies(found):
        want_i, want_l = img0, lab0
        if d["hflip"]:
            want_i, want_l = want_i[:, ::-1], want_l[:, ::-1]
        if d["vflip"]:
            want_i, want_l = want_i[::-1], want_l[::-1]
        want_i, want_l = np.rot90(want_i, d["rot90"]), np.rot90(want_l, d["rot90"])
        assert np.array_equal(img, want_i) and np.array_equal(lab, want_l), d
        moved += d["hflip"] or d["vflip"] or d["rot90"] > 0
    assert moved > 0


def test_crops_are_exact_windows(quintal):
    found = augmented(quintal, "{ copies = 3, crop = [50, 40] }", size=96)
    plain = augmented(quintal, "{ copies = 1, hflip = 0.0 }", size=96)
    for key, (img, lab, d) in found.items():
        base_img, base_lab, _ = plain[key.split("@")[0]]
        left, top, w, h = d["crop"]
        assert (w, h) == (50, 40) and img.shape == (40, 50, 3)
        assert np.array_equal(img, base_img[top : top + h, left : left + w])
        assert np.array_equal(lab, base_lab[top : top + h, left : left + w])
        if "@" not in key:
            assert (left, top) == (23, 28), "the kept original is the centre crop"


def test_affine_warps_agree_with_opencv(quintal):
    """Labels (nearest) agree with cv2.warpAffine INTER_NEAREST on at least 99.9% of pixels;
    images (bilinear) on at least 99.9%, never by more than one grey level (OpenCV 5 samples in
    float as segprep does; the last rounding of a value may differ)."""
    stage = "{ copies = 3, rotate = [-30, 30], shift = [-0.15, 0.15], zoom = [0.8, 1.3], zoom_per_axis = true, shear = [-8, 8] }"
    found = augmented(quintal, stage, size=128)
    worst_label, worst_image, largest = 1.0, 1.0, 0
    for (img0, lab0, _), (img, lab, d) in copies(found):
        m = np.array(d["affine"], dtype=np.float64)
        h, w = lab0.shape
        want_l = cv2.warpAffine(
            lab0, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=255
        )
        want_i = cv2.warpAffine(
            img0, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
        )
        diff = np.abs(img.astype(int) - want_i.astype(int))
        worst_label = min(worst_label, (lab == want_l).mean())
        worst_image, largest = min(worst_image, (diff == 0).mean()), max(largest, diff.max())
    assert worst_label >= 0.999, worst_label
    assert worst_image >= 0.999 and largest <= 1, (worst_image, largest)


def test_reflect_border_agrees_with_opencv(quintal):
    stage = '{ copies = 2, rotate = [20, 40], image_border = "reflect", label_border = "reflect" }'
    for (img0, lab0, _), (img, lab, d) in copies(augmented(quintal, stage, size=96)):
        m = np.array(d["affine"])
        h, w = lab0.shape
        want_l = cv2.warpAffine(lab0, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)
        want_i = cv2.warpAffine(img0, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        diff = np.abs(img.astype(int) - want_i.astype(int))
        assert (lab == want_l).mean() >= 0.999
        assert (diff == 0).mean() >= 0.999 and diff.max() <= 1
        assert 255 not in lab, "reflect never fills with ignore"


def test_every_label_stays_in_its_input_set(quintal):
    stage = (
        "{ copies = 3, hflip = 0.5, rot90 = 0.5, rotate = [-40, 40], zoom = [0.6, 1.5], elastic = { alpha = 15, sigma = 3 }, "
        "random_resized_crop = { size = [64, 64] }, brightness = [-0.2, 0.2], noise = [0, 0.05], blur = [0, 1] }"
    )
    for (_, lab0, _), (_, lab, _) in copies(augmented(quintal, stage)):
        assert set(np.unique(lab)) <= set(np.unique(lab0)) | {255}


def test_same_seed_same_bytes_any_threads_and_alone(quintal):
    tmp, head = quintal
    stage = "{ copies = 2, hflip = 0.5, rotate = [-20, 20], elastic = { alpha = 10, sigma = 3 }, noise = [0, 0.03], seed = 11 }"
    text = head + f'[[stage]]\nresize = {{ size = 64 }}\n[[stage]]\naugment = {stage}\n[output]\ndir = "out"\n'
    (tmp / "p.toml").write_text(text)
    one = tmp / "one"
    two = tmp / "two"
    assert segprep("build", "p.toml", "--threads", "1", "--out", one, cwd=tmp).returncode == 0
    assert segprep("build", "p.toml", "--threads", "2", "--out", two, cwd=tmp).returncode == 0
    for a, b in zip(sorted(one.glob("*.npz")), sorted(two.glob("*.npz"))):
        assert a.read_bytes() == b.read_bytes()
    # one sample alone gives the very same copies
    alone = tmp / "alone"
    (alone / "stills").mkdir(parents=True)
    (alone / "labelsRGB").mkdir()
    shutil.copy(tmp / "q" / "stills" / "datasetQuintal_038.png", alone / "stills")
    shutil.copy(tmp / "q" / "labelsRGB" / "datasetQuintal_038_L.png", alone / "labelsRGB")
    (tmp / "a.toml").write_text(text.replace("q/stills", "alone/stills").replace("q/labelsRGB", "alone/labelsRGB"))
    assert segprep("build", "a.toml", "--out", tmp / "alone_out", cwd=tmp).returncode == 0
    full, single = samples(one), samples(tmp / "alone_out")
    for key in ("datasetQuintal_038@1", "datasetQuintal_038@2"):
        assert np.array_equal(full[key][0], single[key][0]) and full[key][2] == single[key][2]
    # another seed, other copies
    (tmp / "s.toml").write_text(text.replace("seed = 11", "seed = 12"))
    assert segprep("build", "s.toml", "--out", tmp / "other", cwd=tmp).returncode == 0
    other = samples(tmp / "other")
    assert not np.array_equal(other["datasetQuintal_038@1"][0], full["datasetQuintal_038@1"][0])


def test_photometric_leaves_labels_and_u16_range(tmp_path):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from PIL import Image

    from tiffwrite import write_tiff

    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    rng = np.random.default_rng(0)
    write_tiff(tmp_path / "img" / "a.tif", rng.integers(0, 65536, size=(20, 30, 5), dtype=np.uint16))
    lab = rng.integers(0, 3, size=(20, 30), dtype=np.uint8)
    Image.fromarray(lab).save(tmp_path / "lab" / "a.png")
    out = build(
        tmp_path,
        '[input]\nimages = "img"\nlabels = "lab"\n[labels]\nformat = "index"\nnum_classes = 3\n'
        "[[stage]]\naugment = { copies = 2, brightness = [0.3, 0.5], contrast = [1.5, 2], gamma = [0.5, 2], noise = [0.01, 0.02], blur = [0.5, 1] }\n"
        '[output]\ndir = "out"\n',
    )
    found = samples(out)
    for _key, (img, l, _d) in found.items():
        assert img.dtype == np.uint16 and img.shape == (20, 30, 5)
        assert np.array_equal(l, lab), "photometric changes never touch the label"
