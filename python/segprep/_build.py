"""`segprep.open(OUT)`: a finished build, its classes, counts and class weights, and its splits as
datasets with random access."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._cache import BlockCache
from ._errors import BuildError
from ._readers import GymFile, LabelRules, ParquetShard, Sample, ShardReader, StackedNpz, stack
from ._remote import localize

INDEX_NAMES = ("index.json", "_index.json")
STATS_NAMES = ("stats.json", "_stats.json")
WEIGHT_SCHEMES = ("inverse", "median", "enet", "effective")
DTYPES = {"u8": np.dtype(np.uint8), "u16": np.dtype(np.uint16), "f32": np.dtype(np.float32)}
DEFAULT_CACHE_BYTES = 1 << 30


@dataclass(frozen=True)
class ClassInfo:
    """A class of the build: its id in the labels, its name, and its colour where it has one."""

    id: int
    name: str
    color: tuple[int, int, int] | None = None


def open(
    path: str | os.PathLike[str],
    *,
    verify: str = "sha256",
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Build:
    """Opens a finished build: a local folder, or an `s3://`, `gs://`, `az://` or `file://` URL
    (copied once into `cache_dir`, by default `~/.cache/segprep`, by the `segprep` command).

    `verify`: `"sha256"` (default) checks each file's size when the build is opened and its sha256
    the first time it is read in this process; `"size"` checks sizes only. `cache_bytes` bounds the
    decoded row groups and compressed shards kept for random access.
    """
    if verify not in ("sha256", "size"):
        raise ValueError(f"verify must be 'sha256' or 'size', not {verify!r}")
    return Build(localize(os.fspath(path), cache_dir), verify=verify, cache_bytes=cache_bytes)


def find_file(folder: Path, names: Sequence[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


class Build:
    """A finished segprep build. `build["train"]` is the train split as a dataset."""

    def __init__(self, folder: Path, *, verify: str = "sha256", cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.path = folder
        index_path = find_file(folder, INDEX_NAMES)
        if index_path is None:
            why = "no such folder" if not folder.is_dir() else "it has no index.json"
            raise BuildError(
                f"{folder}: not a finished segprep build ({why}); a build writes index.json last, "
                "so rerun `segprep build` to finish it"
            )
        self.index: dict[str, Any] = _read_json(index_path)
        self.verify = verify
        self.cache = BlockCache(cache_bytes)
        self._verified: set[str] = set()
        self._lock = threading.Lock()
        self._check_files()
        stats_path = find_file(folder, STATS_NAMES)
        self.stats: dict[str, Any] = _read_json(stats_path) if stats_path else {}

    def __getstate__(self) -> dict[str, Any]:
        # workers (spawned or forked) get a fresh cache; what was verified stays verified
        state = self.__dict__.copy()
        state["cache"] = self.cache.max_bytes
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["cache"] = BlockCache(state["cache"])
        state["_lock"] = threading.Lock()
        self.__dict__.update(state)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}: {n}" for s, n in self.counts.items())
        return f"segprep.Build({str(self.path)!r}, {self.format}/{self.layout}, {counts})"

    @property
    def format(self) -> str:
        return str(self.index["format"])

    @property
    def layout(self) -> str:
        return str(self.index["layout"])

    @property
    def classes(self) -> list[ClassInfo]:
        return [
            ClassInfo(c["id"], c["name"], tuple(c["color"]) if c.get("color") else None)  # type: ignore[arg-type]
            for c in self.index["classes"]
        ]

    @property
    def memory_mapped(self) -> bool:
        """Whether samples are read in place (stored NPZ, Gym files) rather than decoded by block."""
        compressed = self.index["pipeline"].get("output", {}).get("compression") == "deflate"
        return self.format == "npz" and (self.layout == "gym" or not compressed)

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.index["classes"]]

    @property
    def num_classes(self) -> int:
        """Model outputs needed: the largest class id plus one (ids may be sparse)."""
        return max((c["id"] for c in self.index["classes"]), default=-1) + 1

    @property
    def ignore_index(self) -> int:
        return int(self.index["ignore_index"])

    @property
    def splits(self) -> list[str]:
        return list(self.index["splits"])

    @property
    def counts(self) -> dict[str, int]:
        """Samples per split."""
        return {s: int(v["samples"]) for s, v in self.index["splits"].items()}

    def class_counts(self, split: str = "train") -> dict[str, Any]:
        """The split's class counts from stats.json (pixels, images, image_pixels per class)."""
        return self._split_stats(split, "splits")

    def class_weights(self, split: str = "train", scheme: str = "inverse") -> np.ndarray:
        """Loss weights as a float32 array indexed by class id (length `num_classes`); absent
        classes and ids that are no class get 0. Schemes as `segprep stats` documents them."""
        if scheme not in WEIGHT_SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(WEIGHT_SCHEMES)}, not {scheme!r}")
        table = self._split_stats(split, "class_weights")
        weights = np.zeros(self.num_classes, dtype=np.float32)
        weights[np.asarray(table["ids"], dtype=np.int64)] = np.asarray(table[scheme], dtype=np.float64)
        return weights

    def _split_stats(self, split: str, section: str) -> dict[str, Any]:
        by_split = self.stats.get(section)
        if by_split is None:
            raise BuildError(
                f"{self.path}: stats.json has no `{section}` (a build by an older segprep); "
                "rebuild, or run `segprep stats` on the build"
            )
        if split not in by_split:
            raise KeyError(f"no split {split!r} in {self.path} (splits: {', '.join(by_split)})")
        return dict(by_split[split])

    def __getitem__(self, split: str) -> SplitDataset:
        if split not in self.index["splits"]:
            raise KeyError(f"no split {split!r} in {self.path} (splits: {', '.join(self.splits)})")
        return SplitDataset(self, split)

    def rules(self) -> LabelRules:
        image = self.index["image"]
        return LabelRules(
            ignore_index=self.ignore_index,
            label_dtype=DTYPES[self.index["label_dtype"]],
            image_dtype=DTYPES[image["dtype"]],
            image_bands=int(image["bands"]),
        )

    def files(self, split: str) -> list[dict[str, Any]]:
        return [f for f in self.index["files"] if f["split"] == split]

    def _check_files(self) -> None:
        for record in self.index["files"]:
            path = self.path / record["file"]
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise BuildError(
                    f"{path}: listed in index.json but missing; rerun `segprep build` to restore it"
                ) from None
            if size != record["bytes"]:
                raise BuildError(
                    f"{path}: {size} bytes where index.json records {record['bytes']}; the file was altered "
                    "or cut: rerun `segprep build` to rebuild it"
                )

    def verified(self, record: dict[str, Any]) -> Path:
        """The record's path, its sha256 checked once per process (with `verify="sha256"`)."""
        path = self.path / record["file"]
        if self.verify == "size" or record["file"] in self._verified:
            return path
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                digest = hashlib.sha256().hexdigest()
            else:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    digest = hashlib.sha256(mapped).hexdigest()
        if digest != record["sha256"]:
            raise BuildError(
                f"{path}: sha256 {digest} where index.json records {record['sha256']}; the file was "
                "altered since the build: rerun `segprep build` to rebuild it"
            )
        with self._lock:
            self._verified.add(record["file"])
        return path

    def reader(self, record: dict[str, Any]) -> ShardReader:
        path = self.verified(record)
        rows = int(record["samples"])
        if self.format == "npz" and self.layout == "gym":
            return GymFile(path, self.rules())
        if self.format == "npz":
            if not self.memory_mapped:
                _warn_compressed(self.path)
            return StackedNpz(path, rows, self.cache)
        return ParquetShard(path, rows, self.layout == "tensor", self.rules(), self.cache)


_warned: set[Path] = set()


def _warn_compressed(folder: Path) -> None:
    if folder not in _warned:
        _warned.add(folder)
        warnings.warn(
            f"{folder}: a deflate-compressed build decodes a whole shard for each random access; "
            'build with compression = "stored" for memory-speed random access',
            stacklevel=4,
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as e:
        raise BuildError(f"{path}: cannot read ({e})") from e


class SplitDataset:
    """One split of a build: `len(ds)`, `ds[i]` (a dict of arrays, views where the bytes allow),
    `ds[[i, j]]` or `ds[a:b]` (a batch: arrays stacked), and iteration in order."""

    def __init__(self, build: Build, split: str) -> None:
        self.build, self.split = build, split
        self.records = build.files(split)
        sizes = [int(r["samples"]) for r in self.records]
        self.starts = np.cumsum([0, *sizes])
        self._readers: dict[int, ShardReader] = {}

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __repr__(self) -> str:
        return f"segprep.SplitDataset({self.split!r}, {len(self)} samples, {len(self.records)} files)"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_readers"] = {}
        return state

    @property
    def shard_sizes(self) -> list[int]:
        return [int(r["samples"]) for r in self.records]

    def _reader(self, shard: int) -> ShardReader:
        reader = self._readers.get(shard)
        if reader is None:
            reader = self._readers[shard] = self.build.reader(self.records[shard])
        return reader

    def locate(self, i: int) -> tuple[int, int]:
        """(shard, row) of sample i."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sample {i} of a split of {n}")
        i %= n
        shard = int(np.searchsorted(self.starts, i, side="right") - 1)
        return shard, i - int(self.starts[shard])

    def __getitem__(self, item: int | slice | Sequence[int] | np.ndarray) -> Sample:
        if isinstance(item, (int, np.integer)):
            shard, row = self.locate(int(item))
            return self._reader(shard).read(row)
        indices = np.arange(len(self))[item] if isinstance(item, slice) else np.asarray(item, dtype=np.int64)
        return self.batch(indices)

    def batch(self, indices: np.ndarray) -> Sample:
        """The samples at `indices`, in that order, stacked (a shard's rows are read together)."""
        if len(indices) == 0:
            raise IndexError("an empty batch")
        located = [self.locate(int(i)) for i in indices]
        shards = np.array([s for s, _ in located])
        rows = np.array([r for _, r in located])
        if (shards == shards[0]).all():
            return self._reader(int(shards[0])).read_many(rows)
        return stack([self._reader(s).read(r) for s, r in located])

    def __iter__(self) -> Iterator[Sample]:
        for shard in range(len(self.records)):
            reader = self._reader(shard)
            for row in range(reader.rows):
                yield reader.read(row)
