"""Fresh augmentation every epoch, samples/s delivered to a training loop, in one run, as ratios:
`segprep.Pipeline` live in Keras's data loader against the albumentations generator of the nuclei
(DSB 2018) and CamSeq01 tutorials.

Data: ../shared/data/quintal's photos replicated to --pairs pairs (1024x1024 RGBA, RGB colour
labels, 11 classes), all in the train split. Pipeline: resize to 512x512 (stretch), then hflip
(p 0.5), rotate [-15, 15] and brightness [-0.1, 0.1], batches of --batch.

Rows, each a `keras.utils.PyDataset` read through Keras's own adapter (the iterator `model.fit`
uses), one epoch after a warm-up epoch, the best of --runs rounds taken in turns:
  albumentations   per sample: cv2.imread + cvtColor, colours through one 24-bit lookup table
                   (lut[r << 16 | g << 8 | b]), cv2.resize (linear image, nearest label),
                   albumentations HorizontalFlip + Affine(rotate) + RandomBrightnessContrast;
                   Keras workers=2, as processes and as threads (both shown)
  segprep online   segprep.keras.PyDataset(segprep.Pipeline(FILE)): each batch made on segprep's
                   threads (--threads), Keras workers=1; and Keras workers=2 (threads) with one
                   and with --threads segprep threads each
  segprep prepared the same over Pipeline(FILE, prepared=OUT) after `segprep build FILE
                   --augment-online` (decode and resize done once; the build's time is printed)

The native module must be a release build: the script builds the wheel with `maturin build
--release` and installs it into this interpreter first (--no-build to skip).

  pip install albumentations opencv-python-headless keras jax   # not test dependencies
  python benches/online.py [--pairs 200] [--threads 2]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benches"))

from e2e import make_quintal  # noqa: E402  (the same replicated photos as the build benchmark)

PIPELINE = """
[input]
images = "stills"
labels = "labels"
label_suffix = "_L"
[labels]
format = "rgb"
colors = "label_colors.txt"
[[stage]]
resize = {{ size = 512, mode = "stretch", filter = "bilinear" }}
[[stage]]
augment = {{ copies = 1, seed = 1, hflip = 0.5, rotate = [-15, 15], brightness = [-0.1, 0.1] }}
[split]
train = 1.0
[output]
dir = "prepared"
shard_samples = {shard}
"""


def install_release_wheel():
    maturin = Path(sys.executable).with_name("maturin")
    out = REPO / "target" / "bench-wheel"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    subprocess.run([str(maturin), "build", "--release", "--quiet", "--out", str(out)], cwd=REPO, check=True)
    wheel = next(out.glob("segprep-*.whl"))
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", str(wheel)]
    subprocess.run(pip, check=True)


def albumentations_dataset(root, batch, **workers):
    import albumentations as A
    import cv2
    import keras

    rows = [line.split() for line in (root / "label_colors.txt").read_text().splitlines() if line.strip()]
    lut = np.full(1 << 24, 255, np.uint8)
    for i, r in enumerate(rows):
        lut[(int(r[0]) << 16) | (int(r[1]) << 8) | int(r[2])] = i
    images = sorted((root / "stills").iterdir())

    class Generator(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(**workers)
            self.augment = A.Compose(
                [
                    A.HorizontalFlip(p=0.5),
                    A.Affine(rotate=(-15, 15), p=1),
                    A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0, p=1),
                ]
            )

        def __len__(self):
            return -(-len(images) // batch)

        def one(self, path):
            cv2.setNumThreads(1)
            img = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGB)
            bgr = cv2.imread(str(root / "labels" / f"{path.stem}_L.png"), cv2.IMREAD_COLOR).astype(np.int32)
            lab = lut[(bgr[..., 2] << 16) | (bgr[..., 1] << 8) | bgr[..., 0]]
            img = cv2.resize(img, (512, 512), interpolation=cv2.INTER_LINEAR)
            lab = cv2.resize(lab, (512, 512), interpolation=cv2.INTER_NEAREST)
            out = self.augment(image=img, mask=lab)
            return out["image"], out["mask"]

        def __getitem__(self, i):
            pairs = [self.one(p) for p in images[i * batch : (i + 1) * batch]]
            return np.stack([p[0] for p in pairs]).astype(np.float32), np.stack([p[1] for p in pairs])

    return Generator()


def segprep_dataset(pipeline_file, batch, threads, prepared=None, **workers):
    import segprep
    import segprep.keras

    live = segprep.Pipeline(pipeline_file, threads=threads, prepared=prepared)
    return segprep.keras.PyDataset(live, "train", batch_size=batch, class_weights=None, shuffle=True, **workers)


def epoch(dataset):
    """Samples delivered by one epoch through Keras's adapter, and the seconds it took."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(dataset, shuffle=False)
    start, n = time.perf_counter(), 0
    adapter.on_epoch_begin()
    for x, *_ in adapter.get_numpy_iterator():
        n += len(x)
    adapter.on_epoch_end()
    return n, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", type=Path, default=REPO / "target" / "bench-data")
    ap.add_argument("--no-build", action="store_true", help="use the installed segprep wheel as it is")
    a = ap.parse_args()
    if not a.no_build:
        install_release_wheel()
    root = a.data / f"quintal-{a.pairs}"
    make_quintal(root, a.pairs)
    pipeline = root / "online.toml"
    pipeline.write_text(PIPELINE.format(shard=256))
    command = Path(sys.executable).with_name("segprep")
    start = time.perf_counter()
    build = [str(command), "build", str(pipeline), "--augment-online", "--force", "--threads", str(a.threads)]
    subprocess.run(build, check=True, capture_output=True)
    prepare_seconds = time.perf_counter() - start
    rows = {
        "albumentations, 2 worker processes": lambda: albumentations_dataset(
            root, a.batch, workers=2, use_multiprocessing=True
        ),
        "albumentations, 2 worker threads": lambda: albumentations_dataset(root, a.batch, workers=2),
        f"segprep online, batch on {a.threads} threads": lambda: segprep_dataset(pipeline, a.batch, a.threads),
        "segprep online, 2 worker threads x 1": lambda: segprep_dataset(pipeline, a.batch, 1, workers=2),
        f"segprep online, 2 worker threads x {a.threads}": lambda: segprep_dataset(
            pipeline, a.batch, a.threads, workers=2
        ),
        f"segprep prepared, batch on {a.threads} threads": lambda: segprep_dataset(
            pipeline, a.batch, a.threads, prepared=root / "prepared"
        ),
        f"segprep prepared, 2 worker threads x {a.threads}": lambda: segprep_dataset(
            pipeline, a.batch, a.threads, prepared=root / "prepared", workers=2
        ),
    }
    datasets = {name: make() for name, make in rows.items()}
    for d in datasets.values():
        epoch(d)  # warm-up: worker start, page cache, the build's sha256 check
    best = dict.fromkeys(datasets, 0.0)
    for _ in range(a.runs):
        for name, d in datasets.items():
            n, seconds = epoch(d)
            assert n == a.pairs, (name, n)
            best[name] = max(best[name], n / seconds)
    peer = max(v for k, v in best.items() if k.startswith("albumentations"))
    print(f"{a.pairs} pairs of 1024x1024 -> 512x512, batch {a.batch}, {os.cpu_count()} cores, best of {a.runs}")
    print(f"{'row':45} {'samples/s':>10} {'x albumentations':>17}")
    for name, rate in best.items():
        print(f"{name:45} {rate:10.1f} {rate / peer:17.2f}")
    online = max(v for k, v in best.items() if k.startswith("segprep online"))
    prepared = max(v for k, v in best.items() if k.startswith("segprep prepared"))
    print(f"target >= 3x: online {online / peer:.2f}x; target >= 10x: prepared {prepared / peer:.2f}x")
    print(f"(the prepared build, once: {prepare_seconds:.1f} s for {a.pairs} pairs)")


if __name__ == "__main__":
    main()
