"""Every input format against an independent reading of the same files with numpy and Pillow:
the example pipelines on their fixtures, MVTec dictionaries, MVTec AD, per-instance masks,
band folders, a generated 5-band 16-bit TIFF set, and JPEG EXIF orientation."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tomllib
from PIL import Image, ImageOps

from conftest import REPO, SHARED, build, load_index, segprep, shards, stacked, stats_path, union_numpy
from tiffwrite import write_tiff

FIX = REPO / "fixtures"


def build_example(name, tmp_path):
    """Builds pipelines/<name>.toml into a temp folder."""
    out = tmp_path / name
    r = segprep("build", REPO / "pipelines" / f"{name}.toml", "--out", out, cwd=REPO)
    assert r.returncode == 0, r.stderr
    return out, tomllib.loads((REPO / "pipelines" / f"{name}.toml").read_text())


def all_samples(out):
    """key -> (image, label) over every shard of a stacked NPZ build."""
    found = {}
    for p in shards(out):
        d = np.load(p)
        for k, img, lab in zip(d["key"], d["image"], d["label"]):
            found[str(k)] = (img, lab)
    return found


def stats(out):
    return json.loads(stats_path(out).read_text())["splits"]


def class_pixels(split_stats):
    return {c["name"]: c["pixels"] for c in split_stats["classes"]}


# --- MVTec Deep Learning Tool dictionary ---------------------------------------------------------


def test_mvtec_dictionary_matches_numpy(tmp_path):
    out, _ = build_example("mvtec_dlt", tmp_path)
    d = json.loads((FIX / "mvtec_dlt" / "pill_bags.json").read_text())
    compact = {cid: i for i, cid in enumerate(d["class_ids"])}  # remap compact = true: 0,3,7 -> 0,1,2
    want_counts = {}
    samples = all_samples(out)
    for s in d["samples"]:
        split = {"validation": "val"}.get(s["split"], s["split"])
        raw = np.asarray(Image.open(FIX / "mvtec_dlt" / "labels" / s["segmentation_file_name"]))
        assert set(np.unique(raw)) <= set(d["class_ids"])
        expected = np.vectorize(compact.get)(raw)
        key = s["image_file_name"].replace("\\", "/").rsplit(".", 1)[0]
        image, label = samples[key]
        assert np.array_equal(label, expected), key
        rgb = np.asarray(Image.open(FIX / "mvtec_dlt" / "images" / s["image_file_name"].replace("\\", "/")))
        assert np.array_equal(image, rgb), key
        counts = want_counts.setdefault(split, np.zeros(3, np.int64))
        counts += np.bincount(expected.ravel(), minlength=3)
    for split, counts in want_counts.items():
        got = class_pixels(stats(out)[split])
        assert [got[n] for n in d["class_names"]] == counts.tolist(), split
    assert {k: v["samples"] for k, v in load_index(out)["splits"].items()} == {"train": 5, "val": 2, "test": 1}


# --- MVTec AD ----------------------------------------------------------------------------------


def test_mvtec_ad_masks_become_defect_classes(tmp_path):
    out, _ = build_example("mvtec_ad", tmp_path)
    root = FIX / "datumaro" / "mvtec_dataset" / "category_0"
    samples = all_samples(out)
    for key, (_, label) in samples.items():
        _split, kind, stem = key.split("/")
        mask_path = root / "ground_truth" / kind / f"{stem}_mask.png"
        if kind == "label_0":
            assert not mask_path.exists() and (label == 0).all()
            continue
        mask = np.asarray(Image.open(mask_path))
        assert set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(label, (mask == 255) * int(kind[-1])), key
    assert [c["name"] for c in load_index(out)["classes"]] == ["background", "label_1", "label_2"]


# --- per-instance masks (DSB 2018) -------------------------------------------------------------


def check_instances(root, tmp_path):
    """A huggingface-layout build (sizes vary) read back by Hugging Face datasets."""
    datasets = pytest.importorskip("datasets")
    text = f'[input]\nimages = "{root}"\n[labels]\nformat = "instances"\n[output]\nformat = "parquet"\ndir = "out"\n'
    out = build(tmp_path, text)
    ds = datasets.load_dataset("parquet", data_files=[str(p) for p in shards(out)], split="train")
    total = 0
    for row in ds:
        want, n = union_numpy(Path(root) / row["key"])
        total += n
        got = np.asarray(row["label"])
        assert np.array_equal(got, want), row["key"]
        assert row["image"].size == (want.shape[1], want.shape[0])
    inst = stats(out)["train"]["instances"]
    assert inst["total"] == total and inst["images_with_instances"] == len(ds)


def test_instance_masks_merge_like_a_numpy_union(tmp_path):
    check_instances(FIX / "dsb2018", tmp_path)


def test_instance_masks_of_the_full_shared_sample(tmp_path):
    root = SHARED / "dsb2018" / "stage1_test"
    if not root.is_dir():
        pytest.skip(f"extended check: needs {root} (shared data beside the repository)")
    check_instances(root, tmp_path)


def test_overlapping_masks_follow_the_policy(tmp_path):
    src = FIX / "dsb2018" / "0114f484a16c152baa2d82fdd43740880a762c93f436c8988ac461c5c9dbe7d5"
    shutil.copytree(src, tmp_path / "ds" / src.name)
    masks = sorted((tmp_path / "ds" / src.name / "masks").glob("*.png"))
    first = np.asarray(Image.open(masks[0]))
    Image.fromarray(first).save(masks[0].with_name("zz_copy.png"))  # a duplicate overlaps fully
    head = '[input]\nimages = "ds"\n[labels]\nformat = "instances"\n'
    (tmp_path / "p.toml").write_text(head + '[output]\ndir = "out"\n')
    r = segprep("build", "p.toml", cwd=tmp_path)
    assert r.returncode == 1 and "zz_copy.png" in r.stderr and "overlap" in r.stderr, r.stderr
    out = build(tmp_path, head.replace('"instances"', '"instances"\noverlap = "ignore"') + '[output]\ndir = "out2"\n')
    label = stacked(out.parent / "out2", "train", "label")[0]
    assert np.array_equal(label == 255, first == 255)


# --- band folders and 16-bit TIFF --------------------------------------------------------------


def test_band_folders_stack_in_declared_order_and_stay_16_bit(tmp_path):
    shutil.copytree(FIX / "multiband", tmp_path / "mb")
    out = build(
        tmp_path,
        '[input]\nimages = ["mb/nir", "mb/rgb", "mb/swir"]\nlabels = "mb/labels"\n'
        '[labels]\nformat = "index"\nnum_classes = 4\n[output]\ndir = "out"\n',
    )
    for key, (image, _label) in all_samples(out).items():
        nir = np.asarray(Image.open(tmp_path / "mb" / "nir" / f"{key}.tif"))
        rgb = tiff_read(tmp_path / "mb" / "rgb" / f"{key}.tif")
        swir = tiff_read(tmp_path / "mb" / "swir" / f"{key}.tif")
        want = np.concatenate([nir[..., None], rgb, swir], axis=2)
        assert image.dtype == np.uint16 and np.array_equal(image, want), key


def tiff_read(path):
    """Our own test TIFFs, uncompressed, read back with numpy (Pillow reads no multi-band u16)."""
    import struct

    b = Path(path).read_bytes()
    (n,) = struct.unpack_from("<H", b, 8)
    tags = {}
    for i in range(n):
        tag, typ, count, value = struct.unpack_from("<HHII", b, 10 + 12 * i)
        size = (2 if typ == 3 else 4) * count
        if size <= 4:
            raw = b[10 + 12 * i + 8 : 10 + 12 * i + 8 + size]
        else:
            raw = b[value : value + size]
        tags[tag] = list(struct.unpack("<" + ("H" if typ == 3 else "I") * count, raw))
    w, h, c = tags[256][0], tags[257][0], tags[277][0]
    dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[tags[258][0]]
    planes = [np.frombuffer(b, dtype, count=w * h * (1 if tags[284][0] == 2 else c), offset=o) for o in tags[273]]
    if tags[284][0] == 2:
        return np.stack([p.reshape(h, w) for p in planes], axis=2)
    return planes[0].reshape(h, w, c)


def resize_bilinear_reference(a, out_w, out_h):
    """Pillow's (and fast_image_resize's) bilinear convolution in float64: a triangle filter
    widened by the scale when shrinking, weights normalised per output pixel."""

    def axis(a, out, ax):
        n = a.shape[ax]
        scale = n / out
        fscale = max(scale, 1.0)
        support = fscale
        rows = []
        for i in range(out):
            center = (i + 0.5) * scale
            lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n)
            x = np.arange(lo, hi)
            w = np.clip(1 - np.abs((x - center + 0.5) / fscale), 0, None)
            w /= w.sum()
            rows.append(np.tensordot(w, np.take(a, x, axis=ax), axes=([0], [ax])))
        return np.stack(rows, axis=ax)

    return axis(axis(a.astype(np.float64), out_w, 1), out_h, 0)


@pytest.mark.parametrize("planar", [False, True])
def test_five_band_16_bit_tiff_survives_resize_and_standardize(tmp_path, planar):
    """Tolerance: one 16-bit level before standardizing (the resizer rounds to u16 between its
    two passes and at the end; the reference does not), so |ours - numpy| <= 1 / std + 1e-5."""
    rng = np.random.default_rng(5)
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    for i in range(3):
        img = rng.integers(0, 65536, size=(30, 40, 5), dtype=np.uint16)
        img[..., 3] = np.linspace(0, 60000, 40, dtype=np.uint16)[None, :]  # a smooth band too
        write_tiff(tmp_path / "img" / f"t{i}.tif", img, planar=planar)
        Image.fromarray(rng.integers(0, 3, size=(30, 40), dtype=np.uint8)).save(tmp_path / "lab" / f"t{i}.png")
    mean, std = [1000.0, 2000.0, 30000.0, 30000.0, 5.0], [500.0, 800.0, 20000.0, 17000.0, 3.0]
    out = build(
        tmp_path,
        f'[input]\nimages = "img"\nlabels = "lab"\n[labels]\nformat = "index"\nnum_classes = 3\n'
        f'[[stage]]\nresize = {{ size = [20, 15], filter = "bilinear" }}\n'
        f'[[stage]]\nstandardize = {{ mode = "fixed", mean = {mean}, std = {std} }}\n[output]\ndir = "out"\n',
    )
    for key, (image, label) in all_samples(out).items():
        src = tiff_read(tmp_path / "img" / f"{key}.tif")
        want = (resize_bilinear_reference(src, 20, 15) - np.array(mean)) / np.array(std)
        assert image.dtype == np.float32 and image.shape == (15, 20, 5)
        tol = 1.0 / np.array(std) + 1e-5 * np.abs(want)
        assert (np.abs(image - want) <= tol).all(), (key, np.abs(image - want).max(axis=(0, 1)))
        raw = np.asarray(Image.open(tmp_path / "lab" / f"{key}.png"))
        assert set(np.unique(label)) <= set(np.unique(raw)), "labels are never interpolated"


def test_rescale_is_the_explicit_way_to_u8(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    img = np.arange(0, 16 * 8 * 2, dtype=np.uint16).reshape(8, 16, 2) * 20
    write_tiff(tmp_path / "img" / "a.tif", img)
    Image.fromarray(np.zeros((8, 16), np.uint8)).save(tmp_path / "lab" / "a.png")
    out = build(
        tmp_path,
        '[input]\nimages = "img"\nlabels = "lab"\n[labels]\nformat = "index"\nnum_classes = 1\n'
        '[[stage]]\nrescale = { input_range = [0, 4095], output = "u8" }\n[output]\ndir = "out"\n',
    )
    got = stacked(out, "train", "image")[0]
    want = np.round(np.clip(img / 4095, 0, 1) * 255).astype(np.uint8)
    assert got.dtype == np.uint8 and np.array_equal(got, want)


def test_mixed_band_counts_are_listed_or_converted_by_rule(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        rgb = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        im = Image.fromarray(rgb).convert("L") if i in (1, 3) else Image.fromarray(rgb)
        im.save(tmp_path / "img" / f"s{i}.png")
        Image.fromarray(np.zeros((6, 8), np.uint8)).save(tmp_path / "lab" / f"s{i}.png")
    head = '[input]\nimages = "img"\nlabels = "lab"\n'
    rest = '[labels]\nformat = "index"\nnum_classes = 1\n[output]\ndir = "out"\n'
    (tmp_path / "p.toml").write_text(head + rest)
    r = segprep("build", "p.toml", cwd=tmp_path)
    assert r.returncode == 1 and "s1.png" in r.stderr and "s3.png" in r.stderr and "channels = " in r.stderr, r.stderr
    out = build(tmp_path, head + "channels = 3\n" + rest)
    grey = np.asarray(Image.open(tmp_path / "img" / "s1.png"))
    got = dict(zip(stacked(out, "train", "key"), stacked(out, "train", "image")))
    assert np.array_equal(got["s1"], np.repeat(grey[..., None], 3, axis=2))


# --- JPEG EXIF orientation ---------------------------------------------------------------------


def jpeg_with_orientation(path, pixels, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, quality=95, exif=exif)


def test_exif_orientation_is_applied_like_pillow_and_checked(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 250  # a bright left edge shows where the turn went
    jpeg_with_orientation(tmp_path / "img" / "a.jpg", pixels, 6)  # 6: rotate 90 clockwise to view
    Image.fromarray(np.zeros((40, 20), np.uint8)).save(tmp_path / "lab" / "a.png")  # matches the turned image
    rest = '[labels]\nformat = "index"\nnum_classes = 1\n[output]\ndir = "out"\n'
    out = build(tmp_path, '[input]\nimages = "img"\nlabels = "lab"\n' + rest)
    got = stacked(out, "train", "image")[0]
    want = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "img" / "a.jpg")))
    assert got.shape == (40, 20, 3) and np.array_equal(got, want)

    r = segprep("check", "p.toml", cwd=tmp_path)
    assert "EXIF orientation: 1" in r.stdout, r.stdout

    Image.fromarray(np.zeros((20, 40), np.uint8)).save(tmp_path / "lab" / "a.png")  # matches the stored pixels
    r = segprep("build", "p.toml", "--force", cwd=tmp_path)
    assert r.returncode == 1 and 'exif = "ignore"' in r.stderr and "as stored" in r.stderr, r.stderr
    r = segprep("check", "p.toml", cwd=tmp_path)
    assert "matches the image as stored" in r.stdout, r.stdout
    (tmp_path / "p.toml").write_text('[input]\nimages = "img"\nlabels = "lab"\nexif = "error"\n' + rest)
    r = segprep("build", "p.toml", "--force", cwd=tmp_path)
    assert r.returncode == 1 and "a.jpg" in r.stderr and "EXIF orientation" in r.stderr, r.stderr


# --- dataset families from a pipeline file alone -----------------------------------------------


def declared(pipeline):
    return pipeline["labels"]["classes"]


def test_camvid_pair_lists_and_colours(tmp_path):
    out, pipe = build_example("camvid", tmp_path)
    colours = {tuple(c["color"]): c["id"] for c in declared(pipe)}
    root = FIX / "datumaro" / "camvid_dataset"
    listed = {}
    for split in ("train", "val", "test"):
        for line in (root / f"{split}.txt").read_text().split("\n"):
            if line.strip():
                image, label = line.split()
                listed[image.strip("/").rsplit(".", 1)[0]] = (split, root / label.strip("/"))
    samples = all_samples(out)
    assert set(samples) == set(listed)
    for key, (_, label) in samples.items():
        rgb = np.asarray(Image.open(listed[key][1]).convert("RGB"))
        ids = np.array([[colours[tuple(p)] for p in row] for row in rgb])
        ids[ids == 0] = 255  # Void -> ignore
        assert np.array_equal(label, ids), key
    assert {k: v["samples"] for k, v in load_index(out)["splits"].items()} == {"train": 1, "val": 1, "test": 2}


def test_cityscapes_train_ids_and_folder_splits(tmp_path):
    out, _ = build_example("cityscapes", tmp_path)
    gt = FIX / "datumaro" / "cityscapes_dataset" / "train_dataset" / "gtFine"
    samples = all_samples(out)
    assert len(samples) == 4
    for key, (_, label) in samples.items():
        raw = np.asarray(Image.open(gt / f"{key}_gtFine_labelTrainIds.png"))
        want = np.where(raw == 19, 255, raw)
        assert np.array_equal(label, want), key
    assert {k: v["samples"] for k, v in load_index(out)["splits"].items()} == {"train": 1, "val": 1, "test": 2}


def test_voc_colours_and_unlabelled_images(tmp_path):
    out, pipe = build_example("voc", tmp_path)
    index = load_index(out)
    assert index["unpaired_skipped"] == 1
    import pyarrow.parquet as pq

    t = pq.read_table(shards(out)[0])
    colours = {tuple(c["color"]): c["id"] for c in declared(pipe)}
    for key, lab in zip(t.column("key").to_pylist(), t.column("label").to_pylist()):
        raw = np.asarray(
            Image.open(FIX / "datumaro" / "voc_dataset" / "voc_dataset1" / "SegmentationClass" / f"{key}.png").convert(
                "RGB"
            )
        )
        ids = np.array([[colours[tuple(p)] for p in row] for row in raw])
        got = np.asarray(Image.open(io.BytesIO(lab["bytes"])))
        # resize fit to 512: nearest, so every output id is an input id
        assert set(np.unique(got)) <= set(np.unique(ids)) | {255}


def test_ade20k_class_from_red_and_green(tmp_path):
    out, _ = build_example("ade20k", tmp_path)
    root = FIX / "datumaro" / "ade20k2017_dataset" / "dataset"
    for key, (_, label) in all_samples(out).items():
        seg = np.asarray(Image.open(root / f"{key}_seg.png").convert("RGB")).astype(np.int64)
        cls = seg[..., 0] // 10 * 256 + seg[..., 1]
        want = np.where(cls == 0, 65535, cls)  # unlabeled -> ignore
        assert label.dtype == np.uint16 and np.array_equal(label, want), key
