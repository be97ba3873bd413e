"""Random access into a build, as a training loop does it: `segprep.open`'s datasets against the
ways users read shards without it, in one run, as samples/s and ratios.

Data: ../shared/data/quintal's photos replicated to --pairs pairs, resized to 512x512 (stretch),
256 samples a shard, built three times: stored NPZ, Parquet tensor layout, Parquet Hugging Face
layout. Every file is read once first (so all runs read from the page cache), and every dataset
gets one untimed pass (segprep checks each shard's sha256 the first time it reads it).

Each timed reader takes the same --reads random indices (seeded) and copies every byte of the
image and the label into a preallocated buffer, so a view that is never touched counts nothing:
  bare mmap       numpy views of the stored NPZ members at their offsets (the floor)
  segprep npz     segprep.open(npz)["train"][i]
  segprep tensor  segprep.open(tensor)["train"][i]
  segprep hf      segprep.open(hf)["train"][i] (PNG decoded per item)
  np.load         np.load(shard)["image"][row], np.load(shard)["label"][row]
  datasets        datasets.load_dataset("parquet", ...).with_format("numpy")[i]

Where torch is installed it also times one epoch of segprep.torch.IterableDataset through a
DataLoader with 0 and 2 workers, against copying the same samples in one process.

  python benches/loader.py [--pairs 300] [--reads 2000] [--bin target/release/segprep]
"""

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benches"))

from e2e import make_quintal  # noqa: E402  (the same replicated photos as the build benchmark)

import segprep  # noqa: E402
from segprep._npz import open_npz  # noqa: E402

PIPELINE = """
[input]
images = "{data}/stills"
labels = "{data}/labels"
label_suffix = "_L"
[labels]
format = "rgb"
colors = "{data}/label_colors.txt"
[[stage]]
resize = {{ size = [512, 512], mode = "stretch" }}
[output]
dir = "{out}"
shard_samples = 256
{output}
"""
LAYOUTS = {
    "npz": 'format = "npz"',
    "tensor": 'format = "parquet"\nlayout = "tensor"',
    "hf": 'format = "parquet"\nlayout = "huggingface"',
}


def make_builds(root, binary):
    builds = {}
    for name, output in LAYOUTS.items():
        out = root / f"out-{name}"
        if not any((out / n).is_file() for n in ("index.json", "_index.json")):
            text = PIPELINE.format(data=root / "data", out=out, output=output)
            (root / f"{name}.toml").write_text(text)
            subprocess.run([binary, "build", f"{name}.toml", "--force"], cwd=root, check=True, capture_output=True)
        builds[name] = out
    return builds


def warm(folder):
    for f in folder.rglob("*"):
        if f.is_file():
            f.read_bytes()


class Sink:
    """Buffers every read is copied into: each byte of image and label is touched once."""

    def __init__(self, sample):
        self.image = np.empty_like(sample["image"])
        self.label = np.empty_like(sample["label"])

    def take(self, image, label):
        np.copyto(self.image, image)
        np.copyto(self.label, label)


def rate(read, indices, sink):
    start = time.perf_counter()
    for i in indices:
        image, label = read(int(i))
        sink.take(image, label)
    return len(indices) / (time.perf_counter() - start)


def bare_mmap(out):
    index = segprep.open(out).index
    members = [open_npz(out / f["file"])[0] for f in index["files"] if f["split"] == "train"]
    starts = np.cumsum([0, *[len(m["image"]) for m in members]])

    def read(i):
        s = int(np.searchsorted(starts, i, side="right") - 1)
        return members[s]["image"][i - starts[s]], members[s]["label"][i - starts[s]]

    return read


def np_load_per_item(out):
    index = segprep.open(out).index
    files = [(out / f["file"], f["samples"]) for f in index["files"] if f["split"] == "train"]
    starts = np.cumsum([0, *[n for _, n in files]])

    def read(i):
        s = int(np.searchsorted(starts, i, side="right") - 1)
        with np.load(files[s][0]) as d:
            return d["image"][i - starts[s]], d["label"][i - starts[s]]

    return read


def hf_datasets(out, cache):
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    import datasets

    files = sorted(str(f) for f in out.glob("train-*.parquet"))
    ds = datasets.load_dataset("parquet", data_files={"train": files}, split="train", cache_dir=str(cache))
    ds = ds.with_format("numpy")

    def read(i):
        row = ds[i]
        return row["image"], row["label"]

    return read


def via_segprep(out, **options):
    train = segprep.open(out, **options)["train"]

    def read(i):
        s = train[i]
        return s["image"], s["label"]

    return read


def loader_epoch(out):
    """samples/s of one epoch through a DataLoader (batches of 16) with 0 and 2 workers, and of
    copying the same samples out in one process."""
    try:
        from torch.utils.data import DataLoader

        from segprep.torch import IterableDataset
    except ImportError:
        return None
    build = segprep.open(out)
    ds = IterableDataset(build, "train", batch_size=16, seed=0, rank=0, world_size=1)
    n, rates = len(ds), {}
    for _ in DataLoader(ds, batch_size=16):  # untimed: sha256 checks (forked workers inherit them)
        pass
    for workers in (0, 2):
        times = []
        for _ in range(2):
            start = time.perf_counter()
            for _ in DataLoader(ds, batch_size=16, num_workers=workers):
                pass
            times.append(time.perf_counter() - start)
        rates[workers] = n / min(times)
    train = build["train"]
    start = time.perf_counter()
    for i in ds.indices():
        s = train[int(i)]
        np.array(s["image"]), np.array(s["label"])
    rates["copy"] = n / (time.perf_counter() - start)
    return rates


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--root", type=Path, default=REPO / "target" / "bench-loader")
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "segprep"))
    a = ap.parse_args()
    make_quintal(a.root / "data", a.pairs)
    builds = make_builds(a.root, str(Path(a.bin).resolve()))
    for out in builds.values():
        warm(out)
    readers = {
        "bare mmap (floor)": bare_mmap(builds["npz"]),
        "segprep npz": via_segprep(builds["npz"]),
        "segprep tensor": via_segprep(builds["tensor"]),
        "segprep tensor, 64 MiB cache": via_segprep(builds["tensor"], cache_bytes=64 << 20),
        "segprep hf": via_segprep(builds["hf"]),
        "np.load per item": np_load_per_item(builds["npz"]),
        "datasets per item": hf_datasets(builds["hf"], a.root / "hf-cache"),
    }
    n = segprep.open(builds["npz"]).counts["train"]
    rng = random.Random(0)
    indices = [rng.randrange(n) for _ in range(a.reads)]
    sink = Sink(segprep.open(builds["npz"])["train"][0])
    print(f"{n} train samples of 512x512, {a.reads} random reads each, every byte copied")
    results = {}
    for name, read in readers.items():
        rate(read, range(n), sink)  # untimed pass: sha256 checks, caches
        slow = name in ("np.load per item", "segprep tensor, 64 MiB cache")
        results[name] = rate(read, indices[: 100 if slow else None], sink)
        print(f"  {name:<28} {results[name]:>10.0f} samples/s", flush=True)
    floor = results["bare mmap (floor)"]
    for name in ("segprep npz", "segprep tensor", "segprep tensor, 64 MiB cache", "segprep hf"):
        print(
            f"  {name} / bare mmap: {results[name] / floor:.2f}; / np.load per item: "
            f"{results[name] / results['np.load per item']:.0f}x; / datasets per item: "
            f"{results[name] / results['datasets per item']:.1f}x"
        )
    for target in ("segprep npz", "segprep tensor"):
        verdict = "PASS" if results[target] >= 5000 else "MISS"
        print(f"  target >= 5000 samples/s, {target}: {verdict}")
    epoch = loader_epoch(builds["npz"])
    if epoch:
        print(
            f"  DataLoader over IterableDataset, 0 workers: {epoch[0]:.0f} samples/s, 2 workers: {epoch[2]:.0f}; "
            f"copying in one process: {epoch['copy']:.0f}; 2 workers / copying: {epoch[2] / epoch['copy']:.2f}"
        )
    else:
        print("  torch is not installed: DataLoader figures skipped")


if __name__ == "__main__":
    main()
