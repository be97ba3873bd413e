"""Shared helpers: run the segprep binary built by `cargo build`, on temp copies of the fixtures."""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
BIN = Path(os.environ.get("SEGPREP_BIN", REPO / "target" / "debug" / "segprep"))


# stages of the worker and engine checks (object storage, Ray): a resize, an augment and a split,
# so shards differ per split and per copy
WORKER_STAGES = """
[[stage]]
resize = { size = [160, 120], mode = "fill" }
[[stage]]
augment = { copies = 1, hflip = 0.5, rotate = [-20, 20] }
[split]
train = 0.5
val = 0.5
seed = 3
"""


def segprep(*args, cwd):
    r = subprocess.run([str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    return r


def build(cwd, pipeline_text, *extra):
    (Path(cwd) / "p.toml").write_text(pipeline_text)
    r = segprep("build", "p.toml", *extra, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return Path(cwd) / "out"


def quintal_head(images, labels, colors):
    return f"""
[input]
images = "{images}"
labels = "{labels}"
label_suffix = "_L"
[labels]
format = "rgb"
colors = "{colors}"
"""


@pytest.fixture
def quintal(tmp_path):
    """A temp folder with the fixture pairs under q/, and the pipeline head that reads them."""
    shutil.copytree(REPO / "fixtures" / "quintal", tmp_path / "q")
    return tmp_path, quintal_head("q/stills", "q/labelsRGB", "q/label_colors.txt")


def read_colour_table(path):
    """label_colors.txt the independent way: numpy over whitespace-split lines."""
    rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    return np.array([[int(v) for v in r[:3]] for r in rows], dtype=np.int64), [" ".join(r[3:]) for r in rows]


def map_colours_numpy(label_path, table):
    """RGB label -> class ids with numpy only: encode colours as integers and search the table."""
    rgb = np.asarray(Image.open(label_path).convert("RGB")).astype(np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    table_code = (table[:, 0] << 16) | (table[:, 1] << 8) | table[:, 2]
    order = np.argsort(table_code)
    pos = np.searchsorted(table_code[order], code)
    pos = np.clip(pos, 0, len(order) - 1)
    ids = order[pos]
    assert (table_code[ids] == code).all(), f"{label_path} has colours outside the table"
    return ids


def index_path(out):
    """A build's index.json (Parquet builds name it _index.json, which Parquet folder readers skip)."""
    plain = Path(out) / "index.json"
    return plain if plain.exists() else Path(out) / "_index.json"


def stats_path(out):
    """A build's stats.json (_stats.json in a Parquet build)."""
    return index_path(out).with_name(index_path(out).name.replace("index", "stats"))


def load_index(out):
    return json.loads(index_path(out).read_text())


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def shards(out, split=None):
    index = load_index(out)
    return [Path(out) / f["file"] for f in index["files"] if split in (None, f["split"])]


def stacked(out, split, name):
    """Concatenates one array across a split's shards, in shard order."""
    return np.concatenate([np.load(p)[name] for p in shards(out, split)])


def union_numpy(sample_dir):
    """Per-instance masks (0/255) merged by union, the independent way; and how many there are."""
    masks = sorted((Path(sample_dir) / "masks").glob("*.png"))
    arrays = [np.asarray(Image.open(m)) for m in masks]
    assert all(set(np.unique(a)) <= {0, 255} for a in arrays)
    return np.any([a == 255 for a in arrays], axis=0).astype(np.uint8), len(arrays)


@pytest.fixture(scope="module")
def quickstart_work(tmp_path_factory):
    """A folder with pipelines/ and fixtures/quintal where the README's quick start was built
    (out/quickstart), as a user's checkout would be after the first set-up command."""
    work = tmp_path_factory.mktemp("quickstart")
    shutil.copytree(REPO / "pipelines", work / "pipelines")
    shutil.copytree(REPO / "fixtures" / "quintal", work / "fixtures" / "quintal")
    r = segprep("build", "pipelines/quickstart.toml", cwd=work)
    assert r.returncode == 0, r.stderr
    return work


def build_generated(tmp, num_classes, stages, split=""):
    """Builds the pairs written under tmp/images and tmp/labels (index labels) with `stages`, all
    samples in one shard; returns the output folder."""
    text = (
        '[input]\nimages = "images"\nlabels = "labels"\n[labels]\nformat = "index"\n'
        f"num_classes = {num_classes}\n{stages}{split}"
        '[output]\ndir = "out"\nshard_samples = 4096\n'
    )
    (Path(tmp) / "p.toml").write_text(text)
    r = segprep("build", "p.toml", cwd=tmp)
    assert r.returncode == 0, r.stderr
    return Path(tmp) / "out"
