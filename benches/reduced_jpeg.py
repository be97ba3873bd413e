"""`[input] jpeg_reduce` on large JPEGs: end-to-end build time with and without it, in one run,
and how far its pixels are from full decoding + the same resize.

Data: ../shared/data/quintal's 10 photos blown up to 2048x1536 (bicubic) and saved as JPEG
(quality 90), replicated to --pairs pairs; their colour labels blown up nearest, PNG. Pipeline:
resize to 512x384 (fit: a 4x reduction, so the JPEGs decode at 1/4), stored NPZ. Each build is the
best of --runs, taken in turns. The pixel difference is over every built sample: PSNR and mean
absolute difference of the reduced build against the full one (labels are compared too: they
must be equal).

  cargo build --release --bin segprep --example decode_floor
  python benches/reduced_jpeg.py [--pairs 100] [--threads 2]
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benches"))

from e2e import make_quintal  # noqa: E402  (the same replication of the shared photos)

SEGPREP = REPO / "target" / "release" / "segprep"
FLOOR = REPO / "target" / "release" / "examples" / "decode_floor"

PIPELINE = """
[input]
images = "stills"
labels = "labels"
label_suffix = "_L"
{reduce}
[labels]
format = "rgb"
colors = "label_colors.txt"
[[stage]]
resize = {{ size = [512, 384], mode = "fit" }}
[split]
train = 1.0
[output]
dir = "out"
shard_samples = 64
"""


def blown_up(photo, label, folder):
    """An `encode` for make_quintal: the photo at 2048x1536 (bicubic) as JPEG quality 90, its label
    at 2048x1536 (nearest) as PNG."""
    from PIL import Image

    jpeg, png = folder / f"{photo.stem}.jpg", folder / f"{photo.stem}_L.png"
    Image.open(photo).convert("RGB").resize((2048, 1536), Image.BICUBIC).save(jpeg, quality=90)
    Image.open(label).convert("RGB").resize((2048, 1536), Image.NEAREST).save(png)
    return jpeg, png


def timed_build(root, file, threads):
    out = root / f"out-{file.split('.')[0]}"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    cmd = [str(SEGPREP), "build", file, "--threads", str(threads), "--out", out.name]
    subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    return time.perf_counter() - start, out


def samples(out):
    found = {}
    for path in sorted(out.glob("*.npz")):
        d = np.load(path)
        for key, image, label in zip(d["key"], d["image"], d["label"]):
            found[str(key)] = (image, label)
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", type=Path, default=REPO / "target" / "bench-data")
    a = ap.parse_args()
    if not SEGPREP.is_file():
        sys.exit("build the release binary first: cargo build --release --bin segprep")
    root = a.data / f"large-jpeg-{a.pairs}"
    make_quintal(root, a.pairs, encode=blown_up)
    (root / "full.toml").write_text(PIPELINE.format(reduce=""))
    (root / "reduced.toml").write_text(PIPELINE.format(reduce="jpeg_reduce = true"))
    best = {"full.toml": float("inf"), "reduced.toml": float("inf")}
    outs = {}
    for _ in range(a.runs):
        for file in best:
            seconds, outs[file] = timed_build(root, file, a.threads)
            best[file] = min(best[file], seconds)
    decode = {}
    for name, flag in (("full", "--images-only"), ("reduced", "--images-reduced-to=512x384")):
        runs = []
        for _ in range(a.runs):
            r = subprocess.run(
                [str(FLOOR), "full.toml", str(a.threads), flag], cwd=root, check=True, capture_output=True
            )
            runs.append(json.loads(r.stdout)["seconds"])
        decode[name] = min(runs)
    full, reduced = samples(outs["full.toml"]), samples(outs["reduced.toml"])
    assert full.keys() == reduced.keys()
    diffs = [reduced[k][0].astype(np.float64) - full[k][0].astype(np.float64) for k in full]
    labels_equal = all(np.array_equal(reduced[k][1], full[k][1]) for k in full)
    mse = float(np.mean([np.mean(d**2) for d in diffs]))
    mad = float(np.mean([np.mean(np.abs(d)) for d in diffs]))
    print(f"{a.pairs} JPEGs of 2048x1536 -> 512x384, {a.threads} threads, best of {a.runs}")
    print(
        f"  decoding the images alone: {decode['full']:.2f} s in full, {decode['reduced']:.2f} s reduced "
        f"({decode['full'] / decode['reduced']:.2f}x)"
    )
    print(f"  full decoding:    {best['full.toml']:.2f} s  ({a.pairs / best['full.toml']:.1f} pairs/s)")
    print(f"  jpeg_reduce = true: {best['reduced.toml']:.2f} s  ({a.pairs / best['reduced.toml']:.1f} pairs/s)")
    print(f"  speed-up {best['full.toml'] / best['reduced.toml']:.2f}x")
    print(
        f"  pixels against full decoding + the same resize: PSNR {10 * np.log10(255**2 / mse):.1f} dB, "
        f"mean absolute difference {mad:.2f} (of 255); labels equal: {labels_equal}"
    )


if __name__ == "__main__":
    main()
