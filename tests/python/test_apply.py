"""`segprep apply` and `segprep restore`, checked with numpy and Pillow: applied training images
equal their shard samples byte for byte; new sizes get the documented geometry; predictions taken
back equal the original labels exactly where the resize was an integer factor, and within
nearest-neighbour boundary differences otherwise."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import build, map_colours_numpy, read_colour_table, segprep, shards

QUICKSTART_STAGES = """
[[stage]]
resize = { size = [256, 192], mode = "fit", filter = "bilinear" }
[[stage]]
pad = { multiple_of = 32 }
"""

# each: stages, output format; every one must be reproduced byte for byte
PARITY = {
    "fit_pad": (QUICKSTART_STAGES, "npz"),
    "fill_crop_per_image": (
        """
[[stage]]
resize = { size = [200, 120], mode = "fill", filter = "bicubic" }
[[stage]]
standardize = { mode = "per_image" }
""",
        "npz",
    ),
    "stretch_dataset_std": (
        """
[[stage]]
remap = { map = { areia = "ignore", muro = "cimento" } }
[[stage]]
resize = { size = [100, 70], filter = "lanczos3" }
[[stage]]
standardize = { mode = "dataset" }
""",
        "npz",
    ),
    "augment_then_fixed_std": (
        """
[[stage]]
resize = { size = [96, 96], filter = "nearest" }
[[stage]]
augment = { copies = 2, hflip = 0.5, rotate = [-10, 10], brightness = [-0.1, 0.1] }
[[stage]]
standardize = { mode = "fixed", mean = [120, 110, 100], std = [50, 50, 50] }
""",
        "npz",
    ),
    "pad_to_size_tensor": (
        """
[[stage]]
resize = { size = [128, 128], mode = "fit" }
[[stage]]
pad = { size = [160, 144], image = [1, 2, 3], placement = "top_left" }
""",
        "parquet",
    ),
}


def shard_images(out):
    """key -> (image array, image_mean or None) from every NPZ or tensor Parquet shard."""
    got = {}
    for f in shards(out):
        if f.suffix == ".npz":
            d = np.load(f)
            means = d["image_mean"] if "image_mean" in d else [None] * len(d["key"])
            for k, img, m in zip(d["key"], d["image"], means):
                got[str(k)] = (img, m)
        else:
            import pyarrow.parquet as pq

            t = pq.read_table(f)
            images = t.column("image").combine_chunks().to_numpy_ndarray()
            for k, img in zip(t.column("key").to_pylist(), images):
                got[k] = (img, None)
    return got


def applied(out):
    """key -> (array, record) from an apply folder (NPZ or NPY)."""
    records = [json.loads(l) for l in (out / "samples.jsonl").read_text().splitlines()]
    got = {}
    for r in records:
        f = out / r["output"]
        if f.suffix == ".npz":
            d = np.load(f)
            assert str(d["key"][r["index"]]) == r["key"]
            got[r["key"]] = (d["image"][r["index"]], r)
        else:
            got[r["key"]] = (np.load(f), r)
    return got


@pytest.mark.parametrize("case", sorted(PARITY))
def test_apply_reproduces_training_samples_byte_for_byte(quintal, case):
    tmp, head = quintal
    stages, fmt = PARITY[case]
    layout = '\nlayout = "tensor"' if fmt == "parquet" else ""
    out = build(
        tmp,
        head + stages + f'[split]\ntrain = 0.5\nval = 0.5\nseed = 3\n[output]\ndir = "out"\nformat = "{fmt}"{layout}\n',
    )
    built = shard_images(out)
    for apply_format in ("npz", "npy"):
        r = segprep(
            "apply",
            "out",
            "--images",
            "q/stills",
            "--out",
            f"ap-{apply_format}",
            "--format",
            apply_format,
            "--batch",
            "4",
            cwd=tmp,
        )
        assert r.returncode == 0, r.stderr
        got = applied(tmp / f"ap-{apply_format}")
        assert len(got) == 6
        for key, (img, record) in got.items():
            # augmented splits hold copies key@n beside the kept original `key`
            want, mean = built[key]
            assert img.dtype == want.dtype and img.shape == want.shape, key
            assert img.tobytes() == want.tobytes(), f"{case}/{apply_format}: {key} differs from its training sample"
            if mean is not None:
                assert record["standardization"]["mean"] == mean
    # threads never change the output
    r = segprep("apply", "out", "--images", "q/stills", "--out", "ap-1", "-j", "1", "--batch", "4", cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert (tmp / "ap-1" / "apply-00000.npz").read_bytes() == (tmp / "ap-npz" / "apply-00000.npz").read_bytes()


def fit_geometry(w, h, tw, th, multiple):
    """The documented `fit` then `pad multiple_of` rule, written out independently."""
    scale = min(tw / w, th / h)

    def half_up(x):
        return int(np.floor(x + 0.5))  # Rust's f64::round, not Python's banker's rounding

    nw, nh = min(max(half_up(w * scale), 1), tw), min(max(half_up(h * scale), 1), th)
    steps = []
    if (nw, nh) != (w, h):
        steps.append({"op": "resize", "from": [w, h], "to": [nw, nh]})
    if (nw, nh) != (tw, th):
        steps.append({"op": "pad", "from": [nw, nh], "to": [tw, th], "at": [(tw - nw) // 2, (th - nh) // 2]})
    pw, ph = -(-tw // multiple) * multiple, -(-th // multiple) * multiple
    if (pw, ph) != (tw, th):
        steps.append({"op": "pad", "from": [tw, th], "to": [pw, ph], "at": [(pw - tw) // 2, (ph - th) // 2]})
    return steps, (nw, nh)


def test_apply_new_sizes_follow_the_documented_geometry(quintal):
    tmp, head = quintal
    stages = '[[stage]]\nresize = { size = [250, 190], mode = "fit" }\n[[stage]]\npad = { multiple_of = 32 }\n'
    build(tmp, head + stages + '[output]\ndir = "out"\n')
    new = tmp / "new"
    (new / "sub").mkdir(parents=True)
    src = Image.open(tmp / "q" / "stills" / "datasetQuintal_001.png").convert("RGB")
    sizes = {"wide": (300, 120), "sub/tall": (90, 200), "small": (50, 40)}
    for name, size in sizes.items():
        src.resize(size, Image.BILINEAR).save(new / f"{name}.png")
    r = segprep("apply", "out", "--images", "new", "--out", "ap", "--format", "npy", cwd=tmp)
    assert r.returncode == 0, r.stderr
    got = applied(tmp / "ap")
    assert sorted(got) == sorted(sizes)
    for name, (w, h) in sizes.items():
        img, record = got[name]
        steps, (nw, nh) = fit_geometry(w, h, 250, 190, 32)
        assert record["original_size"] == [w, h]
        assert record["geometry"] == steps, name
        assert img.shape == (192, 256, 3)
        # content: Pillow's bilinear within a mean of 1 level; everything around it the fill 0
        x0, y0 = (250 - nw) // 2 + 3, (190 - nh) // 2 + 1
        ref = np.asarray(Image.open(new / f"{name}.png").resize((nw, nh), Image.BILINEAR)).astype(float)
        content = img[y0 : y0 + nh, x0 : x0 + nw].astype(float)
        assert np.abs(content - ref).mean() <= 1.0, name
        outside = np.ones(img.shape[:2], bool)
        outside[y0 : y0 + nh, x0 : x0 + nw] = False
        assert (img[outside] == 0).all(), name


def blocky_dataset(root, size=(40, 30), classes=4, count=4):
    """Index labels made of 5x5 blocks of random classes (so boundaries are sparse), and images."""
    rng = np.random.default_rng(11)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    w, h = size
    for i in range(count):
        blocks = rng.integers(0, classes, size=(-(-h // 5), -(-w // 5)))
        label = np.kron(blocks, np.ones((5, 5), np.uint8))[:h, :w].astype(np.uint8)
        Image.fromarray(label).save(root / "labels" / f"s{i}.png")
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "images" / f"s{i}.png")
    return f"""
[input]
images = "images"
labels = "labels"
[labels]
format = "index"
num_classes = {classes}
"""


def stacked_predictions(out, ap, pred):
    """The build's labels as a model's perfect prediction, stacked per applied NPZ file."""
    labels = {}
    for f in shards(out):
        d = np.load(f)
        labels.update({str(k): l for k, l in zip(d["key"], d["label"])})
    pred.mkdir(exist_ok=True)
    for f in sorted(ap.glob("apply-*.npz")):
        keys = np.load(f)["key"]
        np.save(pred / f"{f.stem}.npy", np.stack([labels[str(k)] for k in keys]))
    return labels


def test_restore_integer_factor_returns_the_original_labels(tmp_path):
    head = blocky_dataset(tmp_path)
    stages = "[[stage]]\nresize = { size = [80, 60] }\n[[stage]]\npad = { size = [96, 64] }\n"
    out = build(tmp_path, head + stages + '[output]\ndir = "out"\n')
    assert segprep("apply", "out", "--images", "images", "--out", "ap", cwd=tmp_path).returncode == 0
    stacked_predictions(out, tmp_path / "ap", tmp_path / "pred")
    r = segprep("restore", "out", "--predictions", "pred", "--applied", "ap", "--out", "back", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for i in range(4):
        original = np.asarray(Image.open(tmp_path / "labels" / f"s{i}.png"))
        back = np.asarray(Image.open(tmp_path / "back" / f"s{i}.png"))
        assert back.dtype == np.uint8 and back.shape == original.shape
        assert (back == original).all(), f"s{i}: {(back != original).sum()} pixels differ"
        colour = np.asarray(Image.open(tmp_path / "back" / f"s{i}_color.png"))
        assert colour.shape == (*original.shape, 3)
        # one colour per class, the same everywhere
        for c in np.unique(original):
            assert len(np.unique(colour[original == c], axis=0)) == 1


def doubled_and_applied(tmp_path, count=4):
    """The blocky set built at twice its size and applied to ap/; returns the build's labels by key."""
    head = blocky_dataset(tmp_path, count=count)
    out = build(tmp_path, head + '[[stage]]\nresize = { size = [80, 60] }\n[output]\ndir = "out"\n')
    assert segprep("apply", "out", "--images", "images", "--out", "ap", cwd=tmp_path).returncode == 0
    return stacked_predictions(out, tmp_path / "ap", tmp_path / "stack")


@pytest.mark.parametrize("dtype", ["u1", "<i2", "<u2", "<i4", ">u4", "<i8", "<u8"])
def test_restore_reads_class_ids_of_any_integer_dtype(tmp_path, dtype):
    labels = doubled_and_applied(tmp_path, count=2)
    pred = tmp_path / "pred"
    pred.mkdir()
    for k, l in labels.items():
        np.save(pred / f"{k}.npy", l.astype(dtype))
    r = segprep("restore", "out", "--predictions", "pred", "--applied", "ap", "--out", "back", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for k in labels:
        original = np.asarray(Image.open(tmp_path / "labels" / f"{k}.png"))
        assert (np.asarray(Image.open(tmp_path / "back" / f"{k}.png")) == original).all()


def test_restore_probabilities_bilinear_and_channels_first(tmp_path):
    """One-hot probabilities of the build's labels, saved per key as (K,H,W): restored bilinearly
    (the 2x downscale weights the block's own pixels 9/16), argmax equals the original labels."""
    labels = doubled_and_applied(tmp_path)
    pred = tmp_path / "pred"
    pred.mkdir()
    for k, l in labels.items():
        np.save(pred / f"{k}.npy", np.eye(4, dtype=np.float32)[l].transpose(2, 0, 1))
    r = segprep(
        "restore", "out", "--predictions", "pred", "--applied", "ap", "--out", "back", "--probabilities", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    for i in range(4):
        original = np.asarray(Image.open(tmp_path / "labels" / f"s{i}.png"))
        assert (np.asarray(Image.open(tmp_path / "back" / f"s{i}.png")) == original).all()
        prob = np.load(tmp_path / "back" / f"s{i}_prob.npy")
        assert prob.shape == (30, 40, 4) and prob.dtype == np.float32
        assert np.allclose(prob.sum(axis=2), 1.0, atol=1e-4)


def test_restore_non_integer_factor_differs_only_at_boundaries(quintal):
    tmp, head = quintal
    out = build(tmp, head + QUICKSTART_STAGES + '[output]\ndir = "out"\n')
    assert segprep("apply", "out", "--images", "q/stills", "--out", "ap", cwd=tmp).returncode == 0
    stacked_predictions(out, tmp / "ap", tmp / "pred")
    r = segprep("restore", "out", "--predictions", "pred", "--applied", "ap", "--out", "back", cwd=tmp)
    assert r.returncode == 0, r.stderr
    table, _ = read_colour_table(tmp / "q" / "label_colors.txt")
    total = differ = 0
    for f in sorted((tmp / "q" / "labelsRGB").glob("*_L.png")):
        key = f.name[: -len("_L.png")]
        original = map_colours_numpy(f, table)
        back = np.asarray(Image.open(tmp / "back" / f"{key}.png"))
        assert back.shape == original.shape
        # 256 -> 192 and back: a pixel may take a neighbour's class, never a class from afar
        padded = np.pad(original, 1, mode="edge")
        near = np.zeros(original.shape, bool)
        for dy in range(3):
            for dx in range(3):
                near |= padded[dy : dy + original.shape[0], dx : dx + original.shape[1]] == back
        assert near.all(), f"{key}: a restored class is not within one pixel of the original"
        total += back.size
        differ += (back != original).sum()
    assert differ / total < 0.05, f"{differ / total:.3%} of pixels differ"


def test_restore_fill_crop_gives_ignore_where_nothing_was_predicted(tmp_path):
    head = blocky_dataset(tmp_path)
    out = build(tmp_path, head + '[[stage]]\nresize = { size = [30, 30], mode = "fill" }\n[output]\ndir = "out"\n')
    assert segprep("apply", "out", "--images", "images", "--out", "ap", cwd=tmp_path).returncode == 0
    stacked_predictions(out, tmp_path / "ap", tmp_path / "pred")
    r = segprep("restore", "out", "--predictions", "pred", "--applied", "ap", "--out", "back", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    record = json.loads((tmp_path / "ap" / "samples.jsonl").read_text().splitlines()[0])
    # 40x30 -> 40x30 (already covers 30x30) -> crop 30x30 at (5, 0)
    assert record["geometry"] == [{"op": "crop", "from": [40, 30], "to": [30, 30], "at": [5, 0]}]
    back = np.asarray(Image.open(tmp_path / "back" / "s0.png"))
    original = np.asarray(Image.open(tmp_path / "labels" / "s0.png"))
    assert (back[:, :5] == 255).all() and (back[:, 35:] == 255).all()
    assert (back[:, 5:35] == original[:, 5:35]).all()


def test_apply_and_restore_refuse_bad_input_by_name(tmp_path):
    head = blocky_dataset(tmp_path)
    build(tmp_path, head + '[[stage]]\nresize = { size = [80, 60] }\n[output]\ndir = "out"\n')
    # a grey image where the build has RGB
    grey = tmp_path / "grey"
    grey.mkdir()
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(grey / "g.png")
    r = segprep("apply", "out", "--images", "grey", "--out", "ap-grey", cwd=tmp_path)
    assert r.returncode == 1 and "g.png" in r.stderr and "band" in r.stderr, r.stderr
    assert not (tmp_path / "ap-grey" / "apply.json").exists()
    # a folder that is not an apply output is not overwritten
    r = segprep("apply", "out", "--images", "images", "--out", "labels", cwd=tmp_path)
    assert r.returncode == 1 and "not empty" in r.stderr
    # a run killed before apply.json can be rerun into its folder
    assert segprep("apply", "out", "--images", "images", "--out", "ap-killed", cwd=tmp_path).returncode == 0
    (tmp_path / "ap-killed" / "apply.json").unlink()
    r = segprep("apply", "out", "--images", "images", "--out", "ap-killed", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "ap-killed" / "apply.json").exists(), r.stderr
    # not a build
    r = segprep("apply", "images", "--images", "images", "--out", "x", cwd=tmp_path)
    assert r.returncode == 1 and "index.json" in r.stderr
    assert segprep("apply", "out", "--images", "images", "--out", "ap", "--format", "npy", cwd=tmp_path).returncode == 0
    pred = tmp_path / "pred"
    pred.mkdir()
    np.save(pred / "s0.npy", np.zeros((60, 80), np.int64))
    np.save(pred / "s1.npy", np.zeros((59, 80), np.int64))
    np.save(pred / "s2.npy", np.full((60, 80), 7, np.int32))
    r = segprep("restore", "out", "--predictions", "pred", "--applied", "ap", "--out", "back", cwd=tmp_path)
    assert r.returncode == 1 and "s1.npy" in r.stderr and "[59, 80]" in r.stderr, r.stderr
    np.save(pred / "s1.npy", np.zeros((60, 80), np.uint8))
    r = segprep("restore", "out", "--predictions", "pred", "--applied", "ap", "--out", "back", cwd=tmp_path)
    assert r.returncode == 1 and "s2.npy" in r.stderr and "7" in r.stderr, r.stderr
    (pred / "s2.npy").unlink()
    r = segprep("restore", "out", "--predictions", "pred", "--applied", "ap", "--out", "back", cwd=tmp_path)
    assert r.returncode == 1 and "no prediction for `s2`" in r.stderr, r.stderr
    r = segprep(
        "restore", "out", "--predictions", "pred", "--applied", "ap", "--out", "back", "--skip-missing", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "back").glob("*.png") if "_color" not in p.name) == ["s0.png", "s1.png"]
    # predictions written into the apply folder would be read as images
    r = segprep("restore", "out", "--predictions", "ap", "--out", "back2", cwd=tmp_path)
    assert r.returncode == 2 and "folder of their own" in r.stderr


def test_completions_and_man_page_come_from_the_cli(tmp_path):
    import subprocess

    r = segprep("completions", "bash", cwd=tmp_path)
    assert r.returncode == 0
    for command in ("build", "apply", "restore", "stats", "completions"):
        assert command in r.stdout
    (tmp_path / "segprep.bash").write_text(r.stdout)
    assert subprocess.run(["bash", "-n", str(tmp_path / "segprep.bash")]).returncode == 0
    for shell in ("zsh", "fish", "powershell", "elvish"):
        r = segprep("completions", shell, cwd=tmp_path)
        assert r.returncode == 0 and "restore" in r.stdout, shell
    r = segprep("man", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith(".ie") and ".TH segprep 1" in r.stdout
    assert segprep("man", "--out", "man1", cwd=tmp_path).returncode == 0
    pages = sorted(p.name for p in (tmp_path / "man1").iterdir())
    assert "segprep-apply.1" in pages and "segprep-restore.1" in pages and "segprep.1" in pages
    if shutil.which("groff"):
        text = subprocess.run(
            ["groff", "-man", "-Tutf8", str(tmp_path / "man1" / "segprep-apply.1")], capture_output=True, text=True
        ).stdout
        assert "samples.jsonl" in text


def test_apply_and_restore_on_the_full_shared_quintal(tmp_path, capsys):
    """Extended check on all of ../shared/data/quintal (10 x 1024x1024 RGBA photos, RGB labels):
    resize fit 512, pad, dataset standardization; apply reproduces every sample, restore returns
    the labels within one pixel of the original at boundaries."""
    from conftest import SHARED

    src = SHARED / "quintal"
    if not src.is_dir():
        pytest.skip(f"{src} is absent: the extended check needs ../shared beside the repository")
    head = f"""
[input]
images = "{src / "stills"}"
labels = "{src / "labelsRGB"}"
label_suffix = "_L"
[labels]
format = "rgb"
colors = "{src / "label_colors.txt"}"
[[stage]]
resize = {{ size = 512, mode = "fit" }}
[[stage]]
pad = {{ multiple_of = 32 }}
[[stage]]
standardize = {{ mode = "dataset" }}
[split]
train = 0.7
val = 0.3
[output]
dir = "out"
"""
    out = build(tmp_path, head)
    built = shard_images(out)
    r = segprep("apply", "out", "--images", src / "stills", "--out", "ap", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = applied(tmp_path / "ap")
    assert len(got) == len(built) == 10
    assert all(img.tobytes() == built[k][0].tobytes() for k, (img, _) in got.items())
    stacked_predictions(out, tmp_path / "ap", tmp_path / "pred")
    r = segprep("restore", "out", "--predictions", "pred", "--applied", "ap", "--out", "back", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table, _ = read_colour_table(src / "label_colors.txt")
    differ = total = 0
    for k in got:
        original = map_colours_numpy(src / "labelsRGB" / f"{k}_L.png", table)
        back = np.asarray(Image.open(tmp_path / "back" / f"{k}.png"))
        differ += (back != original).sum()
        total += back.size
    with capsys.disabled():
        print(f"\nshared quintal 1024 -> 512 -> 1024: {differ / total:.3%} of label pixels differ after restore")
    assert differ / total < 0.05


def test_restore_refuses_two_predictions_for_one_key(tmp_path):
    """A stacked file and a per-key file (or a PNG and an NPY) for the same image: which one the
    model wrote last is not restore's to guess."""
    labels = doubled_and_applied(tmp_path, count=2)
    pred = tmp_path / "stack"
    key = sorted(labels)[0]
    np.save(pred / f"{key}.npy", labels[key])
    r = segprep("restore", "out", "--predictions", "stack", "--applied", "ap", "--out", "back", cwd=tmp_path)
    assert r.returncode == 1 and f"prediction for `{key}`" in r.stderr, r.stderr
    assert "apply-00000.npy" in r.stderr and f"{key}.npy" in r.stderr, r.stderr
    (pred / "apply-00000.npy").unlink()
    Image.fromarray(labels[key]).save(pred / f"{key}.png")
    r = segprep("restore", "out", "--predictions", "stack", "--applied", "ap", "--out", "back", cwd=tmp_path)
    assert r.returncode == 1 and f"{key}.png also holds a prediction" in r.stderr, r.stderr
    (pred / f"{key}.png").unlink()
    r = segprep(
        "restore", "out", "--predictions", "stack", "--applied", "ap", "--out", "back", "--skip-missing", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("fmt", ["npz", "npy"])
def test_a_failed_apply_leaves_the_earlier_output_whole(tmp_path, fmt):
    """A rerun that fails on a bad image must not take the earlier output apart: its arrays,
    samples.jsonl and apply.json stay as they were, and restore still works from them."""
    labels = doubled_and_applied(tmp_path, count=2)
    ap = tmp_path / "ap"
    args = ("--images", "images", "--out", "ap", "--format", fmt)
    assert segprep("apply", "out", *args, cwd=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in ap.iterdir() if p.is_file()}
    assert "apply.json" in before and "samples.jsonl" in before
    (tmp_path / "images" / "s9.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    r = segprep("apply", "out", *args, cwd=tmp_path)
    assert r.returncode == 1 and "s9.png" in r.stderr and "left as it was" in r.stderr, r.stderr
    after = {p.name: p.read_bytes() for p in ap.iterdir() if p.is_file()}
    assert after == before
    assert [p.name for p in ap.iterdir() if p.is_dir()] == [], "no staging folder is left"
    pred = tmp_path / "pred"
    pred.mkdir()
    for k, l in labels.items():
        np.save(pred / f"{k}.npy", l)
    r = segprep("restore", "out", "--predictions", "pred", "--applied", "ap", "--out", "back", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # a successful rerun replaces the earlier arrays: the removed image's file is gone too
    (tmp_path / "images" / "s9.png").unlink()
    (tmp_path / "images" / "s1.png").unlink()
    assert segprep("apply", "out", *args, cwd=tmp_path).returncode == 0
    records = [json.loads(line) for line in (ap / "samples.jsonl").read_text().splitlines()]
    assert [r["key"] for r in records] == ["s0"]
    assert sorted(p.name for p in ap.iterdir() if not p.name.startswith(".")) == sorted(
        ["apply.json", "samples.jsonl", records[0]["output"]]
    )


def test_restore_from_an_unfinished_apply_folder_says_so(tmp_path):
    doubled_and_applied(tmp_path, count=2)
    (tmp_path / "ap" / "apply.json").unlink()
    r = segprep("restore", "out", "--predictions", "stack", "--applied", "ap", "--out", "back", cwd=tmp_path)
    assert r.returncode == 1 and "did not finish" in r.stderr and "run it again" in r.stderr, r.stderr
