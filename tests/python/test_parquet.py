"""Parquet shards read by the libraries trainers use: pyarrow, polars and Hugging Face datasets.
Decoded labels equal the NPZ output of the same pipeline pixel for pixel, images too."""

import json
import os
import subprocess

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from PIL import Image

from conftest import BIN, build, index_path, load_index, shards, stacked, stats_path

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
import datasets

STAGES = '[[stage]]\nresize = { size = [128, 96], mode = "fit" }\n[split]\ntrain = 0.67\nval = 0.33\nseed = 5\n'


def npz_reference(tmp, head, stages=STAGES):
    out = build(tmp, head + stages + '[output]\ndir = "npz"\n'.replace('dir = "npz"', 'dir = "out"'))
    ref = {}
    for split in ("train", "val"):
        for k, img, lab in zip(*(stacked(out, split, n) for n in ("key", "image", "label"))):
            ref[str(k)] = (split, img, lab)
    out.rename(tmp / "npz")
    return ref


def hf_load(files, cache):
    return datasets.load_dataset("parquet", data_files={"x": [str(f) for f in files]}, split="x", cache_dir=str(cache))


def test_huggingface_layout_read_by_pyarrow_polars_and_datasets(quintal, tmp_path):
    tmp, head = quintal
    ref = npz_reference(tmp, head)
    out = build(tmp, head + STAGES + '[output]\nformat = "parquet"\ndir = "out"\n')
    files = shards(out)
    assert [f.name for f in files] == ["train-00000-of-00001.parquet", "val-00000-of-00001.parquet"]
    seen = set()
    for f in files:
        table = pq.read_table(f)
        assert table.column_names == ["image", "label", "key", "split"]
        frame = pl.read_parquet(f)
        assert frame["key"].to_list() == table.column("key").to_pylist()
        ds = hf_load([f], tmp_path / "hf-cache").with_format("numpy")
        assert isinstance(ds.features["image"], datasets.Image) and isinstance(ds.features["label"], datasets.Image)
        for row in ds:
            split, img, lab = ref[str(row["key"])]
            assert row["split"] == split
            assert row["label"].dtype == np.uint8 and np.array_equal(row["label"], lab), row["key"]
            assert np.array_equal(row["image"], img), row["key"]
            seen.add(str(row["key"]))
        # the struct bytes are PNG, as any reader without datasets would decode them
        first = table.column("label")[0].as_py()["bytes"]
        assert first[:8] == b"\x89PNG\r\n\x1a\n"
    assert seen == set(ref)


def test_sixteen_bit_labels_stay_exact(tmp_path):
    for d in ("img", "lab"):
        (tmp_path / d).mkdir()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 300, size=(3, 20, 30)).astype(np.uint16)
    ids[:, 0, :] = 65535
    for i, lab in enumerate(ids):
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(tmp_path / "img" / f"{i}.png")
        Image.fromarray(lab).save(tmp_path / "lab" / f"{i}.png")
    head = (
        '[input]\nimages = "img"\nlabels = "lab"\n[labels]\nformat = "index"\nnum_classes = 300\nignore_index = 65535\n'
    )
    out = build(tmp_path, head + '[output]\nformat = "parquet"\ndir = "out"\n')
    ds = hf_load(shards(out), tmp_path / "hf-cache").with_format("numpy")
    got = {str(r["key"]): r["label"] for r in ds}
    for i, lab in enumerate(ids):
        assert got[str(i)].dtype == np.uint16 and np.array_equal(got[str(i)], lab)
    assert load_index(out)["label_dtype"] == "u16"


def test_tensor_layout_is_a_fixed_shape_tensor(quintal):
    tmp, head = quintal
    stages = STAGES.replace("[split]", '[[stage]]\nstandardize = { mode = "per_image" }\n[split]')
    ref = npz_reference(tmp, head, stages)
    out = build(tmp, head + stages + '[output]\nformat = "parquet"\nlayout = "tensor"\ndir = "out"\n')
    for f in shards(out):
        table = pq.read_table(f)
        image, label = table.column("image").combine_chunks(), table.column("label").combine_chunks()
        assert isinstance(image.type, pa.FixedShapeTensorType) and isinstance(label.type, pa.FixedShapeTensorType)
        assert image.type.shape == [96, 128, 3] and image.type.dim_names == ["H", "W", "C"]
        assert image.type.value_type == pa.float32() and label.type.value_type == pa.uint8()
        images, labels = image.to_numpy_ndarray(), label.to_numpy_ndarray()
        assert images.shape == (len(table), 96, 128, 3) and labels.shape == (len(table), 96, 128)
        for k, img, lab in zip(table.column("key").to_pylist(), images, labels):
            np.testing.assert_allclose(img, ref[k][1], rtol=0, atol=1e-6)
            assert np.array_equal(lab, ref[k][2])
        assert table.column("image_std").to_numpy().min() > 0
        frame = pl.read_parquet(f)
        first = np.asarray(frame["label"][0].to_list(), dtype=np.uint8)
        assert np.array_equal(first.reshape(96, 128), labels[0])


def test_metadata_explains_the_shard(quintal):
    tmp, head = quintal
    out = build(tmp, head + STAGES + '[output]\nformat = "parquet"\ndir = "out"\n')
    index = load_index(out)
    stats = json.loads(stats_path(out).read_text())["splits"]
    for f in shards(out):
        meta = json.loads(pq.read_metadata(f).metadata[b"segprep"])
        assert meta["pipeline_hash"] == index["pipeline_hash"]
        assert meta["classes"] == index["classes"] and meta["ignore_index"] == 255
        assert any(s["stage"] == "resize" for s in meta["stages"])
        split = meta["shard"]["split"]
        assert meta["counts"] == stats[split], "one shard per split here: its counts are the split's"


@pytest.mark.parametrize(
    ("setting", "codec"),
    [("", "UNCOMPRESSED"), ('compression = "zstd"\n', "ZSTD"), ('compression = "deflate"\n', "GZIP")],
)
def test_row_groups_are_capped_and_pixel_columns_plain(quintal, setting, codec):
    tmp, head = quintal
    out = build(tmp, head + f'[output]\nformat = "parquet"\ndir = "out"\nrow_group_bytes = 300000\n{setting}')
    f = shards(out)[0]
    meta = pq.ParquetFile(f).metadata
    # 256x256x3 + 256x256 (u8 labels) = 262144 bytes a sample -> 300000 bytes hold one per row group
    assert meta.num_row_groups == 6 and all(meta.row_group(i).num_rows == 1 for i in range(6))
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    for i, name in enumerate(names):
        col = meta.row_group(0).column(i)
        assert col.compression == codec, name
        if name.startswith(("image", "label")):
            assert col.statistics is None and not col.has_dictionary_page, name


@pytest.mark.parametrize("compression", ["stored", "deflate", "zstd"])
def test_tensor_pixels_are_the_raw_bytes_under_an_identity_dictionary(quintal, compression):
    """u8 pixels are INT32 in Parquet; segprep writes them as indices into the dictionary 0..255,
    bit-packed 8 bits wide, so a stored page is the pixel bytes themselves. Every codec reads back
    through pyarrow and polars to the NPZ build's pixels."""
    tmp, head = quintal
    ref = npz_reference(tmp, head)
    output = f'[output]\nformat = "parquet"\nlayout = "tensor"\ndir = "out"\ncompression = "{compression}"\n'
    out = build(tmp, head + STAGES + output)
    codec = {"stored": "UNCOMPRESSED", "deflate": "GZIP", "zstd": "ZSTD"}[compression]
    for f in shards(out):
        meta = pq.ParquetFile(f).metadata
        names = [meta.schema.column(i).path for i in range(meta.num_columns)]
        rows, stored = meta.row_group(0).num_rows, 0
        for i, name in enumerate(names):
            col = meta.row_group(0).column(i)
            assert col.compression == codec, name
            if name.endswith("list.item"):
                assert col.physical_type == "INT32" and col.has_dictionary_page, name
                assert set(col.encodings) == {"PLAIN", "RLE", "RLE_DICTIONARY"}, (name, col.encodings)
                assert col.statistics is None, name
                stored += col.total_uncompressed_size
        pixels = rows * (96 * 128 * 3 + 96 * 128)
        # two dictionaries of 256 INT32 and a page header and level runs per sample and column
        assert pixels < stored < pixels + 2 * 1024 + rows * 2 * 64, (stored, pixels)
        table = pq.read_table(f)
        images = table.column("image").combine_chunks().to_numpy_ndarray()
        labels = table.column("label").combine_chunks().to_numpy_ndarray()
        frame = pl.read_parquet(f)
        for i, key in enumerate(table.column("key").to_pylist()):
            assert np.array_equal(images[i], ref[key][1]) and np.array_equal(labels[i], ref[key][2]), key
            assert np.array_equal(frame["label"][i].to_numpy().reshape(96, 128), ref[key][2]), key


def test_tensor_layout_keeps_sixteen_bit_pixels_and_labels_exact(tmp_path):
    """u16 images and labels are indices into the dictionary 0..65535, 16 bits wide: every value
    survives, the extremes included, through pyarrow and polars."""
    for d in ("img", "lab"):
        (tmp_path / d).mkdir()
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 300, size=(3, 20, 30)).astype(np.uint16)
    ids[:, 0, :] = 65535
    grey = rng.integers(0, 65536, size=(3, 20, 30), dtype=np.uint16)
    grey[:, 1, :2] = [0, 65535]
    for i, (lab, img) in enumerate(zip(ids, grey)):
        Image.fromarray(img).save(tmp_path / "img" / f"{i}.png")
        Image.fromarray(lab).save(tmp_path / "lab" / f"{i}.png")
    head = (
        '[input]\nimages = "img"\nlabels = "lab"\n[labels]\nformat = "index"\nnum_classes = 300\nignore_index = 65535\n'
    )
    out = build(tmp_path, head + '[output]\nformat = "parquet"\nlayout = "tensor"\ndir = "out"\n')
    (f,) = shards(out)
    table = pq.read_table(f)
    images = table.column("image").combine_chunks().to_numpy_ndarray()
    labels = table.column("label").combine_chunks().to_numpy_ndarray()
    assert images.dtype == np.uint16 and labels.dtype == np.uint16
    frame = pl.read_parquet(f)
    for i, key in enumerate(table.column("key").to_pylist()):
        k = int(key)
        assert np.array_equal(images[i].reshape(20, 30), grey[k]) and np.array_equal(labels[i], ids[k]), key
        assert np.array_equal(frame["label"][i].to_numpy().reshape(20, 30), ids[k]), key
        assert np.array_equal(frame["image"][i].to_numpy().reshape(20, 30), grey[k]), key


def test_file_size_limit_is_a_clear_error_and_leaves_no_shard(quintal):
    tmp, head = quintal
    (tmp / "p.toml").write_text(head + '[output]\nformat = "parquet"\nlayout = "tensor"\ndir = "out"\n')
    r = subprocess.run(
        ["bash", "-c", f"ulimit -f 256; exec {BIN} build p.toml"], cwd=tmp, capture_output=True, text=True
    )
    assert r.returncode == 3, r.stderr  # an output problem: the inputs are not at fault
    assert "train-00000-of-00001.parquet" in r.stderr and "too large" in r.stderr.lower(), r.stderr
    out = tmp / "out"
    assert not list(out.glob("*.parquet")) and not list(out.glob("*.partial"))
    assert not index_path(out).exists()


@pytest.mark.parametrize("delay", [0.2, 0.5, 0.9, 1.4])
def test_killed_build_never_leaves_a_broken_file_under_a_final_name(quintal, delay):
    """SIGKILL at several moments of a build: whatever carries a final shard name is complete."""
    import time

    tmp, head = quintal
    stages = "[[stage]]\nresize = { size = 512 }\n"
    (tmp / "p.toml").write_text(
        head + stages + '[output]\nformat = "parquet"\nlayout = "tensor"\ndir = "out"\nshard_samples = 1\n'
    )
    proc = subprocess.Popen(
        [str(BIN), "build", "p.toml", "--threads", "1"], cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(delay)
    proc.kill()
    proc.wait()
    for f in (tmp / "out").glob("*.parquet"):
        table = pq.read_table(f)
        assert len(table) == 1 and table.column("image").type.shape == [512, 512, 3]


@pytest.mark.parametrize("layout", ["huggingface", "tensor"])
def test_ordinary_calls_show_classes_and_read_the_folder(quintal, layout):
    """What a trainer reaches for first: read_table's schema metadata names the classes and the
    ignore index, pyarrow.dataset reads the build folder, polars gives N-d arrays in one line."""
    tmp, head = quintal
    out = build(tmp, head + STAGES + f'[output]\nformat = "parquet"\nlayout = "{layout}"\ndir = "out"\n')
    index = load_index(out)
    assert index_path(out).name == "_index.json" and not (out / "index.json").exists()
    table = pq.read_table(shards(out)[0])
    meta = json.loads(table.schema.metadata[b"segprep"])
    assert meta["classes"] == index["classes"] and meta["ignore_index"] == index["ignore_index"] == 255
    whole = pads.dataset(out).to_table()
    assert whole.num_rows == sum(s["samples"] for s in index["splits"].values())
    assert sorted(whole.column("key").to_pylist()) == sorted(
        k for f in shards(out) for k in pq.read_table(f)["key"].to_pylist()
    )
    if layout == "tensor":
        h, w, c = index["image"]["height"], index["image"]["width"], index["image"]["bands"]
        frame = pl.read_parquet(shards(out)[0])
        images = frame["image"].to_numpy().reshape(len(frame), h, w, c)  # the documented one-liner
        assert np.array_equal(images, table.column("image").combine_chunks().to_numpy_ndarray())
        labels = frame["label"].to_numpy().reshape(len(frame), h, w)
        assert np.array_equal(labels, table.column("label").combine_chunks().to_numpy_ndarray())
