"""`import segprep`: builds read through `segprep.open` equal what numpy, pyarrow and the Gym files
hold, for every format and layout; epoch orders split across ranks and workers give every sample
once; class weights come from stats.json; bad builds raise errors naming the file."""

import json
import shutil
import subprocess
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import segprep
from segprep._order import EpochOrder

from conftest import BIN, REPO, load_index, shards, stacked

SPLIT = "[split]\ntrain = 0.67\nval = 0.33\nseed = 5\n"
RESIZE = '[[stage]]\nresize = { size = [64, 48], mode = "fit" }\n'
AUGMENT = "[[stage]]\naugment = { copies = 2, seed = 3, hflip = 0.5, rotate = [-10, 10] }\n"


def make(tmp, head, output, stages=RESIZE + AUGMENT, name="out"):
    text = head + stages + SPLIT + f'[output]\ndir = "{name}"\n' + output
    (tmp / f"{name}.toml").write_text(text)
    r = subprocess.run([str(BIN), "build", f"{name}.toml"], cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return tmp / name


def every_sample(ds):
    return [ds[i] for i in range(len(ds))]


def assert_equal_samples(got, image, label, keys):
    assert [s["key"] for s in got] == [str(k) for k in keys]
    for s, img, lab in zip(got, image, label):
        assert s["image"].dtype == img.dtype and np.array_equal(s["image"], img), s["key"]
        assert s["label"].dtype == lab.dtype and np.array_equal(s["label"], lab), s["key"]


def test_stored_npz_is_memory_mapped_and_equals_np_load(quintal):
    tmp, head = quintal
    out = make(tmp, head, "shard_samples = 4\n")
    build = segprep.open(out)
    assert build.splits == ["train", "val"] and build.ignore_index == 255
    assert [c.name for c in build.classes][:2] == [c["name"] for c in load_index(out)["classes"]][:2]
    for split in build.splits:
        ds = build[split]
        image, label, keys = (stacked(out, split, n) for n in ("image", "label", "key"))
        assert len(ds) == len(keys) == build.counts[split]
        got = every_sample(ds)
        assert_equal_samples(got, image, label, keys)
        # zero copy: a sample is a read-only view of the mapped file, not an array of its own
        assert not got[0]["image"].flags.owndata and not got[0]["image"].flags.writeable
        # batches across shard boundaries, in the order asked
        pick = [len(ds) - 1, 0, 2] if len(ds) > 2 else [0]
        batch = ds[pick]
        assert np.array_equal(batch["image"], image[pick]) and np.array_equal(batch["label"], label[pick])
        assert batch["key"] == [str(keys[i]) for i in pick]
        assert [s["key"] for s in ds] == [str(k) for k in keys]
        assert np.array_equal(ds[1:3]["label"], label[1:3])


def test_augmented_samples_carry_their_recorded_parameters(quintal):
    tmp, head = quintal
    out = make(tmp, head, "")
    train = segprep.open(out)["train"]
    recorded = stacked(out, "train", "augment")
    originals = copies = 0
    for i in range(len(train)):
        sample = train[i]
        assert sample["augment"] == json.loads(str(recorded[i]))
        if "@" in sample["key"]:
            copies += 1
            assert set(sample["augment"]) >= {"hflip", "copy"} or sample["augment"], sample
        else:
            originals += 1
            assert sample["augment"] is None
    assert copies == 2 * originals > 0


def test_deflate_build_equals_and_warns_once(quintal):
    tmp, head = quintal
    out = make(tmp, head, 'compression = "deflate"\nshard_samples = 4\n')
    build = segprep.open(out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = every_sample(build["train"])
        every_sample(build["val"])
    assert sum("deflate" in str(w.message) for w in caught) == 1
    image, label, keys = (stacked(out, "train", n) for n in ("image", "label", "key"))
    assert_equal_samples(got, image, label, keys)


def test_gym_layout_equals_its_files(quintal):
    tmp, head = quintal
    out = make(tmp, head, 'layout = "gym"\n', stages=RESIZE)
    build = segprep.open(out)
    for split in build.splits:
        ds = build[split]
        files = shards(out, split)
        assert len(ds) == len(files)
        for i, f in enumerate(files):
            d = np.load(f)
            sample = ds[i]
            assert np.array_equal(sample["image"], d["arr_0"])
            one_hot = d["arr_1"]
            want = np.where(one_hot.max(-1) == 0, 255, one_hot.argmax(-1))
            assert np.array_equal(sample["label"], want) and sample["key"] == str(d["files"][0])


def test_parquet_layouts_equal_pyarrow_and_the_npz_build(quintal):
    tmp, head = quintal
    npz = segprep.open(make(tmp, head, "", name="npz"))
    tensor_out = make(tmp, head, 'format = "parquet"\nlayout = "tensor"\nrow_group_bytes = "20KiB"\n', name="tensor")
    tensor = segprep.open(tensor_out)
    hf = segprep.open(make(tmp, head, 'format = "parquet"\n', name="hf"))
    for split in npz.splits:
        want = every_sample(npz[split])
        tables = [pq.read_table(f) for f in shards(tensor_out, split)]
        assert sum(t.num_rows for t in tables) == len(want)
        table = pa.concat_tables(tables)
        image = table.column("image").combine_chunks().to_numpy_ndarray()
        label = table.column("label").combine_chunks().to_numpy_ndarray()
        for got in (every_sample(tensor[split]), every_sample(hf[split])):
            assert_equal_samples(got, image, label, table.column("key").to_pylist())
            assert [s["augment"] for s in got] == [s["augment"] for s in want]
        assert_equal_samples(want, image, label, table.column("key").to_pylist())
    assert pq.ParquetFile(shards(tensor_out)[0]).num_row_groups > 1, "the test must cross row groups"


def test_per_image_standardization_values_come_with_each_sample(quintal):
    tmp, head = quintal
    stages = RESIZE + '[[stage]]\nstandardize = { mode = "per_image" }\n'
    out = make(tmp, head, "", stages=stages)
    for split in ("train", "val"):
        ds = segprep.open(out)[split]
        mean, std = stacked(out, split, "image_mean"), stacked(out, split, "image_std")
        assert [ds[i]["image_mean"] for i in range(len(ds))] == list(mean)
        assert np.array_equal(ds[list(range(len(ds)))]["image_std"], std)
        assert ds[0]["image"].dtype == np.float32


def test_class_weights_in_stats_json_equal_segprep_stats(quintal):
    tmp, head = quintal
    out = make(tmp, head, "")
    build = segprep.open(out)
    report = subprocess.run([str(BIN), "stats", str(out), "--format", "json"], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)
    for split in build.splits:
        split_rows = next(s for s in rows["splits"] if s["split"] == split)["classes"]
        for scheme in ("inverse", "median", "enet", "effective"):
            w = build.class_weights(split, scheme)
            assert w.dtype == np.float32 and len(w) == build.num_classes
            for row in split_rows:
                assert w[row["id"]] == pytest.approx(row[f"weight_{scheme}"], rel=1e-6), (split, scheme, row)
    counts = build.class_counts("train")
    assert counts["samples"] == build.counts["train"]
    with pytest.raises(ValueError, match="scheme"):
        build.class_weights("train", "balanced")


def test_class_weights_are_indexed_by_sparse_class_ids(tmp_path):
    """MVTec dictionary ids 0, 3, 7 kept as they are (no compacting remap)."""
    shutil.copytree(REPO / "fixtures" / "mvtec_dlt", tmp_path / "fixtures" / "mvtec_dlt")
    text = (REPO / "pipelines" / "mvtec_dlt.toml").read_text().replace("remap = {", "# remap = {")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "sparse.toml").write_text(text.replace("[[stage]]", ""))
    r = subprocess.run([str(BIN), "build", "pipelines/sparse.toml"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    build = segprep.open(tmp_path / "out" / "mvtec_dlt")
    ids = [c.id for c in build.classes]
    assert ids == [0, 3, 7]
    for split in build.splits:
        w = build.class_weights(split, "inverse")
        assert len(w) == 8 and (w[[1, 2, 4, 5, 6]] == 0).all()
        present = [c["id"] for c in build.class_counts(split)["classes"] if c["pixels"] > 0]
        assert (w[present] > 0).all()


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_ranks_and_workers_see_every_sample_once_in_one_order(world, workers):
    sizes = [7, 5, 9, 3]
    for window in (None, 2):
        order = EpochOrder(sizes, shuffle=True, seed=11, window=window)
        seen = []
        for rank in range(world):
            per_worker = [order.worker(4, rank, world, w, workers, batch_size=3) for w in range(workers)]
            seen += [i for part in per_worker for i in part]
            # what a DataLoader delivers: batches taken from the workers in turn
            delivered = round_robin(per_worker, batch=3)
            assert np.array_equal(delivered, order.rank(4, rank, world)), (rank, workers)
        assert sorted(seen) == list(range(sum(sizes)))
        assert np.array_equal(order.epoch(4), EpochOrder(sizes, True, 11, window).epoch(4))
        assert not np.array_equal(order.epoch(4), order.epoch(5))


def round_robin(parts, batch):
    out, cursors = [], [0] * len(parts)
    while any(c < len(p) for c, p in zip(cursors, parts)):
        for w, part in enumerate(parts):
            out += list(part[cursors[w] : cursors[w] + batch])
            cursors[w] += batch
    return np.array(out)


def test_windowed_shuffle_keeps_each_window_within_its_shards():
    sizes = [4, 4, 4, 4, 4]
    order = EpochOrder(sizes, shuffle=True, seed=2, window=2).epoch(0)
    shard = order // 4
    for at in range(0, 20, 8):
        assert len(set(shard[at : at + 8])) <= 2


def test_a_resume_gives_the_rest_of_the_epoch_exactly():
    order = EpochOrder([10, 10, 10], shuffle=True, seed=1)
    for rank, world in ((0, 1), (1, 2)):
        whole = order.rank(3, rank, world)
        for start in (0, 4, 7, len(whole)):
            rest = [order.worker(3, rank, world, w, 2, batch_size=2, start=start) for w in range(2)]
            assert np.array_equal(round_robin(rest, 2), whole[start:])


def test_batches_iterate_a_split_in_the_epoch_order(quintal):
    tmp, head = quintal
    out = make(tmp, head, "")
    train = segprep.open(out)["train"]
    got = list(segprep.batches(train, 4, seed=3, epoch=1, rank=0, world_size=1))
    order = EpochOrder(train.shard_sizes, True, 3).epoch(1)
    assert [k for b in got for k in b["key"]] == [train[int(i)]["key"] for i in order]
    assert got[0]["image"].shape[0] == 4


def test_file_urls_open_like_folders(quintal):
    tmp, head = quintal
    out = make(tmp, head, "")
    assert len(segprep.open(out.as_uri())["train"]) == len(segprep.open(out)["train"])


def test_a_folder_that_is_not_a_finished_build_is_refused(quintal):
    tmp, _head = quintal
    with pytest.raises(segprep.BuildError, match="not a finished segprep build"):
        segprep.open(tmp)
    with pytest.raises(segprep.BuildError, match="no such folder"):
        segprep.open(tmp / "nothing")


def test_a_missing_or_altered_shard_is_named_never_read(quintal):
    tmp, head = quintal
    out = make(tmp, head, "")
    first = shards(out, "train")[0]
    data = bytearray(first.read_bytes())
    # a flipped pixel byte keeps the size: only the sha256 tells
    data[len(data) // 2] ^= 0xFF
    first.write_bytes(bytes(data))
    build = segprep.open(out)
    with pytest.raises(segprep.BuildError, match=f"{first.name}.*sha256"):
        build["train"][0]
    assert len(segprep.open(out, verify="size")["train"][0]["key"]) > 0
    first.write_bytes(bytes(data[:-10]))
    with pytest.raises(segprep.BuildError, match=f"{first.name}.*bytes where index.json records"):
        segprep.open(out)
    first.unlink()
    with pytest.raises(segprep.BuildError, match=f"{first.name}.*missing"):
        segprep.open(out)


def test_a_shard_with_the_wrong_content_shape_is_refused(quintal):
    """An index.json edited to claim other counts: the reader says so instead of misreading."""
    tmp, head = quintal
    out = make(tmp, head, "")
    index = load_index(out)
    index["files"][0]["samples"] += 1
    (out / "index.json").write_text(json.dumps(index))
    with pytest.raises(segprep.BuildError, match=r"samples where index\.json records"):
        segprep.open(out, verify="size")[index["files"][0]["split"]][0]
