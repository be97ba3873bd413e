"""numpy reads every shard with the documented keys, dtypes and shapes; checksums hold."""

import zipfile

import numpy as np

from conftest import REPO, build, load_index, segprep, sha256, shards


def test_quickstart_shards_load_with_numpy(tmp_path):
    r = segprep("build", REPO / "pipelines" / "quickstart.toml", "--out", tmp_path / "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    index = load_index(out)
    shape = {"height": 192, "width": 256}
    assert index["splits"] == {"train": {"samples": 4, "files": 1, **shape}, "val": {"samples": 2, "files": 1, **shape}}
    info = index["image"]
    total = 0
    for f in index["files"]:
        path = out / f["file"]
        assert sha256(path) == f["sha256"] and path.stat().st_size == f["bytes"]
        with np.load(path, allow_pickle=False) as d:
            assert sorted(d.files) == ["image", "key", "label"]
            n = f["samples"]
            assert d["image"].dtype == np.uint8 and d["image"].shape == (
                n,
                info["height"],
                info["width"],
                info["bands"],
            )
            assert d["label"].dtype == np.uint8 and d["label"].shape == (n, info["height"], info["width"])
            assert d["key"].dtype.kind == "U" and d["key"].shape == (n,)
            assert list(d["key"]) == sorted(d["key"]), "keys sorted within a shard"
            # 256x256 fitted into 256x192 -> 192x192 centred, 32 columns of ignore on each side
            assert (d["label"][:, :, :32] == 255).all() and (d["label"][:, :, -32:] == 255).all()
            assert (d["label"][:, :, 32:-32] != 255).all()
            total += n
    assert total == 6
    assert info == {"dtype": "u8", "height": 192, "width": 256, "bands": 3}


def test_shard_files_are_plain_zip_with_fixed_timestamps(quintal):
    tmp, head = quintal
    out = build(tmp, head + '[output]\ndir = "out"\ncompression = "deflate"\n')
    for path in shards(out):
        with zipfile.ZipFile(path) as z:
            assert z.testzip() is None
            for info in z.infolist():
                assert info.date_time == (1980, 1, 1, 0, 0, 0)
                assert info.compress_type == zipfile.ZIP_DEFLATED


def test_deflate_and_stored_hold_the_same_arrays(quintal):
    tmp, head = quintal
    a = build(tmp, head + '[output]\ndir = "out"\n')
    b_dir = tmp / "b"
    b_dir.mkdir()
    (b_dir / "q").symlink_to(tmp / "q")
    b = build(b_dir, head + '[output]\ndir = "out"\ncompression = "deflate"\n')
    for pa, pb in zip(shards(a), shards(b)):
        with np.load(pa) as x, np.load(pb) as y:
            for k in x.files:
                assert np.array_equal(x[k], y[k])
