"""`segprep stats` against numpy: per-class counts and all four weight schemes computed
independently from the label files, on the fixtures and (extended) on the shared datasets; the
report formats read by the libraries users open them with; the plot parsed as XML."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SHARED, map_colours_numpy, quintal_head, read_colour_table, segprep, stats_path, union_numpy


def weights_numpy(pixels, images, image_pixels, beta):
    """The four schemes from their papers' formulas, absent classes 0."""
    pixels, images, image_pixels = (np.asarray(a, np.float64) for a in (pixels, images, image_pixels))
    present = pixels > 0
    k, total = present.sum(), pixels.sum()
    safe = np.where(present, pixels, 1)
    inverse = np.where(present, total / (k * safe), 0)
    f = np.where(present, pixels / np.where(image_pixels > 0, image_pixels, 1), np.nan)
    median = np.where(present, np.nanmedian(f) / np.where(present, f, 1), 0)
    enet = np.where(present, 1 / np.log(1.02 + pixels / total), 0)
    eff = np.where(images > 0, (1 - beta) / (1 - np.power(beta, images)), 0)
    eff = eff * (images > 0).sum() / eff.sum()
    return {"inverse": inverse, "median": median, "enet": enet, "effective": eff}


def report(cwd, target, *args):
    r = segprep("stats", target, "--format", "json", *args, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def check_against(split_report, labels, names, beta=0.999):
    n = len(names)
    pixels = np.zeros(n, np.int64)
    images = np.zeros(n, np.int64)
    image_pixels = np.zeros(n, np.int64)
    for ids in labels:
        c = np.bincount(ids.ravel(), minlength=n)[:n]
        pixels += c
        images += c > 0
        image_pixels += (c > 0) * ids.size
    rows = split_report["classes"]
    assert [r["name"] for r in rows] == list(names)
    assert [r["pixels"] for r in rows] == pixels.tolist()
    assert [r["images"] for r in rows] == images.tolist()
    assert [r["image_pixels"] for r in rows] == image_pixels.tolist()
    want = weights_numpy(pixels, images, image_pixels, beta)
    for scheme, w in want.items():
        got = np.array([r[f"weight_{scheme}"] for r in rows])
        assert np.allclose(got, w, rtol=1e-9, atol=1e-12), scheme
    majority = pixels.argmax()
    assert split_report["majority_class"] == names[majority]
    assert split_report["majority_accuracy"] == pytest.approx(pixels[majority] / pixels.sum())


def check_quintal(root, tmp_path):
    colors = root / "label_colors.txt"
    head = quintal_head(root / "stills", root / "labelsRGB", colors)
    (tmp_path / "p.toml").write_text(head + '[output]\ndir = "out"\n')
    r = report(tmp_path, "p.toml")
    table, names = read_colour_table(colors)
    labels = [map_colours_numpy(f, table) for f in sorted((root / "labelsRGB").glob("*_L.png"))]
    check_against(r["splits"][0], labels, names)


def test_quintal_fixture_counts_and_weights_equal_numpy(tmp_path):
    check_quintal(REPO / "fixtures" / "quintal", tmp_path)


def test_full_quintal_counts_and_weights_equal_numpy(tmp_path):
    root = SHARED / "quintal"
    if not root.is_dir():
        pytest.skip(f"extended check: needs {root} (shared data beside the repository)")
    check_quintal(root, tmp_path)


def check_dsb(root, tmp_path):
    (tmp_path / "p.toml").write_text(
        f'[input]\nimages = "{root}"\n[labels]\nformat = "instances"\n[output]\ndir = "out"\n'
    )
    r = report(tmp_path, "p.toml")
    labels, total = [], 0
    for sample in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        union, n = union_numpy(sample)
        total += n
        labels.append(union.astype(np.int64))
    check_against(r["splits"][0], labels, ["background", "foreground"])
    assert r["splits"][0]["instances"]["total"] == total


def test_dsb_fixture_counts_and_weights_equal_numpy(tmp_path):
    check_dsb(REPO / "fixtures" / "dsb2018", tmp_path)


def test_full_dsb2018_counts_and_weights_equal_numpy(tmp_path):
    root = SHARED / "dsb2018" / "stage1_test"
    if not root.is_dir():
        pytest.skip(f"extended check: needs {root} (shared data beside the repository)")
    check_dsb(root, tmp_path)


def test_hand_made_three_classes(tmp_path):
    """4 images of 10x10: class 0 everywhere but where 1 and 2 are drawn; weights by hand."""
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    for i in range(4):
        lab = np.zeros((10, 10), np.uint8)
        if i < 2:
            lab[:4, :10] = 1  # 40 px of class 1 in images 0 and 1
        if i == 0:
            lab[9, :10] = 2  # 10 px of class 2 in image 0
        Image.fromarray(lab).save(tmp_path / "lab" / f"s{i}.png")
        Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "img" / f"s{i}.png")
    (tmp_path / "p.toml").write_text(
        '[input]\nimages = "img"\nlabels = "lab"\n[labels]\nformat = "index"\n'
        'classes = ["a", "b", "c"]\n[output]\ndir = "out"\n'
    )
    rows = report(tmp_path, "p.toml", "--beta", "0.5")["splits"][0]["classes"]
    # pixels 310, 80, 10 of N = 400; images 4, 2, 1; S = 400, 200, 100
    assert [r["pixels"] for r in rows] == [310, 80, 10]
    by_hand = {
        "inverse": [400 / (3 * 310), 400 / (3 * 80), 400 / (3 * 10)],
        # f = 0.775, 0.4, 0.1: median 0.4
        "median": [0.4 / 0.775, 1.0, 4.0],
        "enet": [1 / np.log(1.02 + 0.775), 1 / np.log(1.02 + 0.2), 1 / np.log(1.02 + 0.025)],
        # beta 0.5: (1-b)/(1-b^n) = 0.5/0.9375, 0.5/0.75, 0.5/0.5; scaled to sum 3
        "effective": list(np.array([8 / 15, 2 / 3, 1.0]) * 3 / (8 / 15 + 2 / 3 + 1.0)),
    }
    for scheme, want in by_hand.items():
        assert np.allclose([r[f"weight_{scheme}"] for r in rows], want, rtol=1e-12), scheme


@pytest.mark.parametrize(
    "output",
    ['format = "npz"', 'format = "npz"\nlayout = "gym"', 'format = "parquet"', 'format = "parquet"\nlayout = "tensor"'],
)
def test_recompute_agrees_with_build_time_counts(quintal, output):
    tmp, head = quintal
    (tmp / "p.toml").write_text(
        head + '[[stage]]\nresize = { size = [64, 48], mode = "fit" }\n'
        "[split]\ntrain = 0.5\nval = 0.5\n[output]\n" + output + '\ndir = "out"\n'
    )
    assert segprep("build", "p.toml", cwd=tmp).returncode == 0
    r = segprep("stats", "out", "--recompute", cwd=tmp)
    assert r.returncode == 0 and "agrees with stats.json" in r.stdout, r.stdout + r.stderr
    stats = json.loads(stats_path(tmp / "out").read_text())
    counts = json.loads(stats_path(tmp / "out").read_text())
    counts["splits"]["train"]["classes"][0]["pixels"] += 1
    stats_path(tmp / "out").write_text(json.dumps(counts))
    r = segprep("stats", "out", "--recompute", cwd=tmp)
    assert r.returncode == 1 and "DIFFERS" in r.stdout, r.stdout
    assert stats["splits"]["train"]["pad_pixels"] > 0, "fit pads, so pad is part of the comparison"


def test_report_formats_and_plot(quintal):
    tmp, head = quintal
    (tmp / "p.toml").write_text(head + '[[stage]]\nremap = { map = { muro = "tijolo" } }\n[output]\ndir = "out"\n')
    r = segprep("stats", "p.toml", "--format", "parquet", "--out", "r.parquet", "--plot", "r.svg", cwd=tmp)
    assert r.returncode == 0, r.stderr
    import polars as pl

    df = pl.read_parquet(tmp / "r.parquet")
    assert df.columns[:4] == ["split", "id", "name", "pixels"] and df["share"].sum() == pytest.approx(1.0)
    svg = ET.parse(tmp / "r.svg").getroot()
    assert svg.tag.endswith("svg")
    texts = {t.text for t in svg.iter() if t.tag.endswith("text")}
    _, names = read_colour_table(tmp / "q" / "label_colors.txt")
    assert set(names) - {"muro"} <= texts, "every class is named on the plot"
    js = report(tmp, "p.toml")
    before = {c["name"]: c["pixels"] for c in js["before_remap"][0]["classes"]}
    after = {c["name"]: c["pixels"] for c in js["splits"][0]["classes"]}
    assert after["tijolo"] == before["tijolo"] + before["muro"] and "muro" not in after
    csv = segprep("stats", "p.toml", "--format", "csv", cwd=tmp).stdout
    assert pl.read_csv(csv.encode()).height == len(after)
    md = segprep("stats", "p.toml", "--format", "markdown", cwd=tmp).stdout
    assert md.startswith("| split | id | name |") and "pixel accuracy" in md
