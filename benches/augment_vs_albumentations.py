"""segprep's augment transforms against albumentations, one core each, same images, same run.

Runs `cargo bench --bench augment` (segprep, release build), then each albumentations equivalent
on the same fixture pairs (256x256 RGB image + mask, OpenCV limited to one thread), and prints
images/s of both and the ratio (above 1: segprep is faster). Both sides include copying the input
and transforming image and mask together.

  pip install albumentations   # not a test dependency
  python benches/augment_vs_albumentations.py [--rounds 40]
"""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def albumentations_transforms():
    import albumentations as A

    return {
        "hflip": A.HorizontalFlip(p=1),
        "rot90": A.RandomRotate90(p=1),
        "rotate": A.Affine(rotate=(-30, 30), p=1),
        "shift_zoom_shear": A.Affine(translate_percent=(-0.1, 0.1), scale=(0.8, 1.2), shear=(-10, 10), p=1),
        "elastic": A.ElasticTransform(alpha=30, sigma=5, p=1),
        "crop": A.RandomCrop(192, 192, p=1),
        "random_resized_crop": A.RandomResizedCrop(size=(192, 192), p=1),
        "brightness": A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0, p=1),
        "contrast": A.RandomBrightnessContrast(brightness_limit=0, contrast_limit=0.2, p=1),
        "gamma": A.RandomGamma(gamma_limit=(80, 120), p=1),
        "hue_saturation": A.HueSaturationValue(hue_shift_limit=18, sat_shift_limit=30, val_shift_limit=0, p=1),
        "noise": A.GaussNoise(std_range=(0.01, 0.05), p=1),
        "blur": A.GaussianBlur(sigma_limit=(0.5, 1.5), p=1),
    }


def load_pairs():
    stills = sorted((REPO / "fixtures" / "quintal" / "stills").glob("*.png"))
    pairs = []
    for s in stills:
        image = np.asarray(Image.open(s).convert("RGB"))
        label = np.asarray(Image.open(s.parent.parent / "labelsRGB" / f"{s.stem}_L.png").convert("L"))
        pairs.append((image, label))
    return pairs


def time_albumentations(transform, pairs, rounds):
    import albumentations as A

    compose = A.Compose([transform])
    compose(image=pairs[0][0].copy(), mask=pairs[0][1].copy())  # warm-up
    start = time.perf_counter()
    n = 0
    for _ in range(rounds):
        for image, label in pairs:
            compose(image=image.copy(), mask=label.copy())
            n += 1
    return n / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    env = dict(os.environ, ROUNDS=str(args.rounds), RAYON_NUM_THREADS="1")
    out = subprocess.run(
        ["cargo", "bench", "--bench", "augment"], cwd=REPO, env=env, check=True, capture_output=True, text=True
    ).stdout
    ours = {r["transform"]: r["images_per_s"] for r in map(json.loads, filter(None, out.splitlines()))}
    pairs = load_pairs()
    theirs = {name: time_albumentations(t, pairs, args.rounds) for name, t in albumentations_transforms().items()}
    print(f"{'transform':<22} {'segprep img/s':>14} {'albumentations img/s':>21} {'ratio':>7}")
    for name, rate in ours.items():
        other = theirs[name]
        print(f"{name:<22} {rate:>14.1f} {other:>21.1f} {rate / other:>7.2f}")


if __name__ == "__main__":
    main()
