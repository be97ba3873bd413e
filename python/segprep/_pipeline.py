"""`segprep.Pipeline(FILE)`: the pipeline file run live, in Rust, inside a data loader: any copy of
any key made on demand with the very bytes a build writes for it, and fresh copies every epoch.

The epoch rule: in a split an augment stage draws copies of, epoch e gives each key its copy e + 1
(so the first `copies` epochs are the build's own copies `key@1`, `key@2`, ...); other splits give
copy 0, the sample itself, every epoch.

Mixed mode: `segprep build FILE --augment-online` (or `[output] augment = "online"`) stores each
sample as it is before the augment stage; `Pipeline(FILE, prepared=OUT)` reads those and runs only
the augment stage and those after it, with the same bytes as decoding the inputs again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._build import WEIGHT_SCHEMES, Build, ClassInfo
from ._build import open as open_build
from ._errors import BuildError
from ._readers import Sample, parse_augment

NUMPY_DTYPES = {"|u1": np.dtype(np.uint8), "<u2": np.dtype("<u2"), "<f4": np.dtype("<f4")}


class Pipeline:
    """A pipeline file, live. `keys(split)`, `sample(key, copy)`, `batch(keys, copy)`, and
    `dataset(split, epoch)` for the framework adapters (which also take a Pipeline directly).

    `threads`: segprep's own threads for `batch` (0: one per core). A Pipeline is safe to hand to
    forked or spawned data-loader workers: `sample` runs on the calling thread, and `batch` makes
    its thread pool in the process that calls it.

    `prepared`: a build of this file made with `--augment-online` (a folder, or a URL as
    `segprep.open` takes it): samples are read from it, decoding skipped, and only the augment
    stage and those after it run.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int = 0,
        prepared: str | os.PathLike[str] | Build | None = None,
        _moments: list[tuple[float, float]] | None = None,
    ) -> None:
        from ._native import Pipeline as NativePipeline

        self.path, self.threads = os.fspath(path), threads
        self._native = NativePipeline(self.path, threads, prepared is not None, _moments)
        self._keys = {split: self._native.keys(split) for split in self._native.splits()}
        self._split_of = {key: split for split, keys in self._keys.items() for key in keys}
        self._stats: dict[str, Any] | None = None
        self.prepared: Build | None = None
        self._rows: dict[str, int] = {}
        if prepared is not None:
            self.prepared = prepared if isinstance(prepared, Build) else open_build(prepared)
            self._rows = self._check_prepared(self.prepared)

    def __getstate__(self) -> dict[str, Any]:
        # a spawned worker opens the file again (discovery gives the same keys) with the dataset
        # standardization measured here, not again; nothing native is pickled
        return {
            "path": self.path,
            "threads": self.threads,
            "stats": self._stats,
            "prepared": self.prepared,
            "moments": self._native.dataset_moments(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        init = Pipeline.__init__
        init(self, state["path"], threads=state["threads"], prepared=state["prepared"], _moments=state["moments"])
        self._stats = state["stats"]

    def _check_prepared(self, build: Build) -> dict[str, int]:
        """Each key's row in its split of the prepared build, which must hold this pipeline's
        samples as they are before the augment stage."""
        recorded = {k: v for k, v in build.index["pipeline"].items() if k != "output"}
        live = {k: v for k, v in json.loads(self._native.config_json()).items() if k != "output"}
        output = build.index["pipeline"].get("output", {})
        if recorded != live or output.get("augment") != "online":
            raise BuildError(
                f"{build.path} is not a build of {self.path} with --augment-online (its pipeline or "
                "augment setting differs): build it with `segprep build FILE --augment-online`"
            )
        rows = {}
        for split in build.splits:
            for row, sample in enumerate(build[split]):
                rows[sample["key"]] = row
        missing = [k for k in self._split_of if k not in rows]
        if missing:
            raise BuildError(f"{build.path} lacks {len(missing)} of the input's keys (first: {missing[0]}); rebuild it")
        return rows

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}: {len(k)}" for s, k in self._keys.items())
        return f"segprep.Pipeline({self.path!r}, {counts})"

    @property
    def splits(self) -> list[str]:
        return list(self._keys)

    def keys(self, split: str) -> list[str]:
        """The split's keys, in the order a build writes them."""
        if split not in self._keys:
            raise KeyError(f"no split {split!r} in {self.path} (splits: {', '.join(self._keys)})")
        return list(self._keys[split])

    @property
    def counts(self) -> dict[str, int]:
        """Keys per split."""
        return {s: len(k) for s, k in self._keys.items()}

    @property
    def classes(self) -> list[ClassInfo]:
        return [ClassInfo(i, name, tuple(color) if color else None) for i, name, color in self._native.classes()]  # type: ignore[arg-type]

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def num_classes(self) -> int:
        return max((c.id for c in self.classes), default=-1) + 1

    @property
    def ignore_index(self) -> int:
        return int(self._native.ignore_index)

    @property
    def hash(self) -> str:
        """The `pipeline_hash` a build of this file records."""
        return str(self._native.hash)

    def augments(self, split: str) -> bool:
        """Whether an augment stage draws copies of `split`."""
        return bool(self._native.augments(split))

    def copy_for_epoch(self, split: str, epoch: int) -> int:
        """The copy each key of `split` gives in epoch `epoch` (see the module's rule)."""
        if epoch < 0:
            raise ValueError(f"epoch {epoch}: epochs count from 0")
        return epoch + 1 if self.augments(split) else 0

    def sample(self, key: str, copy: int = 0) -> Sample:
        """Copy `copy` of `key` (0: the sample itself) as a build stores it: `image` (H,W,C),
        `label` (H,W), `key` (`key@copy` for a copy), `augment` where the pipeline augments,
        `image_mean` / `image_std` after per-image standardization. Bad input raises
        `segprep.DataError` naming the file, the stage and the reason."""
        self._split(key)
        if self.prepared is not None:
            batch = self.batch([key], copy)
            return {k: v[0] if isinstance(v, (list, np.ndarray)) else v for k, v in batch.items()}
        return _arrays(self._native.sample(key, copy), one=True)

    def batch(self, keys: Sequence[str], copy: int = 0) -> Sample:
        """Copy `copy` of each key, made in parallel on segprep's threads with the GIL released,
        stacked in the order given (`image` (N,H,W,C), `label` (N,H,W), lists of keys, ...)."""
        splits = [self._split(key) for key in keys]
        if self.prepared is not None:
            return self._finish_prepared(list(keys), splits, copy)
        return _arrays(self._native.batch(list(keys), copy), one=False)

    def _finish_prepared(self, keys: list[str], splits: list[str], copy: int) -> Sample:
        """The prepared samples of `keys` read from the build (views of a memory-mapped build,
        copied once, by the native side), then the data loader's stages."""
        assert self.prepared is not None
        stored = [self.prepared[s][self._rows[k]] for k, s in zip(keys, splits)]
        image = stored[0]["image"]
        values = None
        if "image_mean" in stored[0]:
            values = [(float(s["image_mean"]), float(s["image_std"])) for s in stored]
        parts = self._native.finish_prepared(
            keys,
            copy,
            [_bytes_of(s["image"]) for s in stored],
            image.shape,
            image.dtype.str,
            [_bytes_of(s["label"]) for s in stored],
            stored[0]["label"].dtype.str,
            values,
        )
        return _arrays(parts, one=False)

    def dataset(self, split: str = "train", epoch: int = 0) -> OnlineSplit:
        """The split as a map-style dataset: item i is copy `copy_for_epoch(split, epoch)` of the
        split's key i. `set_epoch` moves it to another epoch."""
        return OnlineSplit(self, split, epoch)

    def stats(self) -> dict[str, Any]:
        """The class-balance report of the pipeline's samples after every stage, copies included
        (`segprep stats FILE --geometry --format json`); measured once, on first use."""
        if self._stats is None:
            self._stats = dict(json.loads(self._native.stats_json()))
        return self._stats

    def class_weights(self, split: str = "train", scheme: str = "inverse") -> np.ndarray:
        """Loss weights as float32 indexed by class id, as `Build.class_weights` gives them for a
        build of this file (from `stats()`, which decodes the split once)."""
        if scheme not in WEIGHT_SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(WEIGHT_SCHEMES)}, not {scheme!r}")
        reports = {r["split"]: r for r in self.stats()["splits"]}
        if split not in reports:
            raise KeyError(f"no split {split!r} in {self.path} (splits: {', '.join(reports)})")
        weights = np.zeros(self.num_classes, dtype=np.float32)
        for row in reports[split]["classes"]:
            weights[row["id"]] = row[f"weight_{scheme}"]
        return weights

    # what the adapters ask of a build
    memory_mapped = True

    def _split(self, key: str) -> str:
        split = self._split_of.get(key)
        if split is None:
            raise KeyError(f"no key {key!r} in the input of {self.path}")
        return split


def _bytes_of(array: np.ndarray) -> np.ndarray:
    """The array's bytes as a flat uint8 view (a copy only if it is not contiguous)."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def _arrays(parts: dict[str, Any], *, one: bool) -> Sample:
    """numpy arrays over the native module's bytes (writable, owned by the array)."""
    out: Sample = {
        "image": np.frombuffer(parts["image"], NUMPY_DTYPES[parts["image_dtype"]]).reshape(parts["image_shape"]),
        "label": np.frombuffer(parts["label"], NUMPY_DTYPES[parts["label_dtype"]]).reshape(parts["label_shape"]),
        "key": parts["key"],
    }
    if "augment" in parts and (parts["augment"] is not None or not one):
        drawn = parts["augment"]
        out["augment"] = parse_augment(drawn) if one else [parse_augment(d) for d in drawn]
    for name in ("image_mean", "image_std"):
        value = parts.get(name)
        if value is not None:
            out[name] = float(value) if one else np.asarray(value, dtype=np.float64)
    return out


class OnlineSplit:
    """One split of a live pipeline at one epoch: `len(ds)`, `ds[i]`, `ds[[i, j]]` (a batch, made
    on segprep's threads), iteration; the interface of a build's `SplitDataset`."""

    def __init__(self, pipeline: Pipeline, split: str, epoch: int = 0) -> None:
        self.pipeline, self.split = pipeline, split
        self.keys = pipeline.keys(split)
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.copy = self.pipeline.copy_for_epoch(self.split, epoch)

    def at_epoch(self, epoch: int) -> OnlineSplit:
        return OnlineSplit(self.pipeline, self.split, epoch)

    @property
    def build(self) -> Pipeline:
        """What the adapters read classes, ignore index and class weights from."""
        return self.pipeline

    @property
    def shard_sizes(self) -> list[int]:
        # one "shard": any key is made at any time, so epochs shuffle over the whole split
        return [len(self.keys)]

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"segprep.OnlineSplit({self.split!r}, {len(self)} keys, epoch {self.epoch}, copy {self.copy})"

    def __getitem__(self, item: int | slice | Sequence[int] | np.ndarray) -> Sample:
        if isinstance(item, (int, np.integer)):
            n = len(self.keys)
            if not -n <= item < n:
                raise IndexError(f"sample {item} of a split of {n}")
            return self.pipeline.sample(self.keys[int(item)], self.copy)
        indices = np.arange(len(self))[item] if isinstance(item, slice) else np.asarray(item, dtype=np.int64)
        return self.batch(indices)

    def batch(self, indices: np.ndarray | Sequence[int]) -> Sample:
        if len(indices) == 0:
            raise IndexError("an empty batch")
        return self.pipeline.batch([self.keys[int(i)] for i in indices], self.copy)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]
