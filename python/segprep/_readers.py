"""One reader per shard layout, each giving samples by row: `rows` and `read(row)` / `read_many(rows)`.

Readers return numpy arrays. Where the bytes allow it (stored NPZ) they are read-only views of a
memory map; compressed layouts decode a block (an NPZ shard, a Parquet row group) into the shared
`BlockCache` and slice it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ._cache import BlockCache
from ._errors import BuildError
from ._npz import open_npz

Sample = dict[str, Any]


class ShardReader(Protocol):
    rows: int

    def read(self, row: int) -> Sample: ...

    def read_many(self, rows: np.ndarray) -> Sample: ...


@dataclass(frozen=True)
class LabelRules:
    """What a reader needs to turn stored labels back into class ids."""

    ignore_index: int
    label_dtype: np.dtype
    image_dtype: np.dtype
    image_bands: int


def parse_augment(text: Any) -> Any:
    return None if text is None else json.loads(str(text))


def gather(arrays: dict[str, Any], rows: np.ndarray | int) -> Sample:
    """The sample (or batch) at `rows`: a view for one row, a copy for several."""
    return {"image": arrays["image"][rows], "label": arrays["label"][rows], **recorded(arrays, rows)}


def recorded(arrays: dict[str, Any], rows: np.ndarray | int) -> Sample:
    """What a shard records beside the pixels: the key, drawn parameters, standardization values."""
    one = isinstance(rows, (int, np.integer))
    keys = arrays["key"][rows]
    out: Sample = {"key": str(keys) if one else [str(k) for k in keys]}
    if "augment" in arrays:
        drawn = arrays["augment"][rows]
        out["augment"] = parse_augment(drawn) if one else [parse_augment(d) for d in drawn]
    for name in ("image_mean", "image_std"):
        if name in arrays:
            value = arrays[name][rows]
            out[name] = float(value) if one else np.asarray(value)
    return out


class StackedNpz:
    """A stacked NPZ shard: stored members memory-mapped, deflated ones decoded whole into the cache."""

    def __init__(self, path: Path, rows: int, cache: BlockCache) -> None:
        self.path, self.rows, self.cache = path, rows, cache
        self._mapped: dict[str, np.ndarray] | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        if self._mapped is not None:
            return self._mapped
        arrays, stored = self.cache.get(("npz", self.path), self._load)
        if stored:
            self._mapped = arrays  # views of a memory map cost no memory to keep
        return arrays

    def _load(self) -> tuple[tuple[dict[str, np.ndarray], bool], int]:
        arrays, stored = open_npz(self.path)
        for name in ("image", "label", "key"):
            if name not in arrays:
                raise BuildError(f"{self.path}: no `{name}` array; not a stacked segprep shard")
        if len(arrays["image"]) != self.rows:
            raise BuildError(f"{self.path}: {len(arrays['image'])} samples where index.json records {self.rows}")
        size = 0 if stored else sum(a.nbytes for a in arrays.values())
        return (arrays, stored), size

    def read(self, row: int) -> Sample:
        return gather(self.arrays(), row)

    def read_many(self, rows: np.ndarray) -> Sample:
        return gather(self.arrays(), rows)


class GymFile:
    """One Segmentation Gym file: `arr_0` the image, `arr_1` the one-hot label (all zero: ignore)."""

    rows = 1

    def __init__(self, path: Path, rules: LabelRules) -> None:
        self.path, self.rules = path, rules

    def read(self, row: int) -> Sample:
        arrays, _ = open_npz(self.path)
        one_hot = arrays["arr_1"]
        label = one_hot.argmax(axis=-1).astype(self.rules.label_dtype)
        label[one_hot.max(axis=-1) == 0] = self.rules.ignore_index
        sample: Sample = {"image": np.array(arrays["arr_0"]), "label": label, "key": str(arrays["files"][0])}
        if "augment" in arrays:
            sample["augment"] = parse_augment(arrays["augment"][0])
        return sample

    def read_many(self, rows: np.ndarray) -> Sample:
        return stack([self.read(int(r)) for r in rows])


def stack(samples: Sequence[Sample]) -> Sample:
    """Samples as one batch: arrays stacked, keys and parameters as lists."""
    out: Sample = {}
    for name in samples[0]:
        values = [s[name] for s in samples]
        out[name] = np.stack(values) if isinstance(values[0], np.ndarray) else values
    for name in ("image_mean", "image_std"):
        if name in out:
            out[name] = np.asarray(out[name])
    return out


class ParquetShard:
    """A Parquet shard, read a row group at a time through the cache (pyarrow is imported here)."""

    def __init__(self, path: Path, rows: int, tensor: bool, rules: LabelRules, cache: BlockCache) -> None:
        self.path, self.rows, self.tensor, self.rules, self.cache = path, rows, tensor, rules, cache
        self._starts: np.ndarray | None = None
        self._parquet: Any = None

    def _row_groups(self) -> np.ndarray:
        if self._starts is None:
            file = self._file()
            sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
            if sum(sizes) != self.rows:
                raise BuildError(f"{self.path}: {sum(sizes)} rows where index.json records {self.rows}")
            self._starts = np.cumsum([0, *sizes])
        return self._starts

    def _file(self) -> Any:
        """The shard opened once (its footer parsed once), not per row group."""
        if self._parquet is None:
            self._parquet = self._open()
        return self._parquet

    def _open(self) -> Any:
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise BuildError(f"{self.path}: Parquet builds are read with pyarrow: `pip install pyarrow`") from e
        try:
            return pq.ParquetFile(self.path, memory_map=True)
        except Exception as e:  # pyarrow raises its own ArrowInvalid, OSError, ...
            raise BuildError(f"{self.path}: cannot read as Parquet ({e})") from e

    def _group(self, g: int) -> dict[str, Any]:
        return self.cache.get(("parquet", self.path, g), lambda: self._load(g))

    def _load(self, g: int) -> tuple[dict[str, Any], int]:
        table = self._file().read_row_group(g)
        names = table.column_names
        out: dict[str, Any] = {"key": table.column("key").to_numpy(zero_copy_only=False)}
        if "augment" in names:
            out["augment"] = table.column("augment").to_numpy(zero_copy_only=False)
        for name in ("image_mean", "image_std"):
            if name in names:
                out[name] = table.column(name).to_numpy()
        if self.tensor:
            out["image"] = table.column("image").combine_chunks().to_numpy_ndarray()
            out["label"] = table.column("label").combine_chunks().to_numpy_ndarray()
        else:
            out["image"] = table.column("image").combine_chunks().field("bytes")
            out["label"] = table.column("label").combine_chunks().field("bytes")
        return out, out["image"].nbytes + out["label"].nbytes

    def read(self, row: int) -> Sample:
        starts = self._row_groups()
        g = int(np.searchsorted(starts, row, side="right") - 1)
        arrays = self._group(g)
        local = row - int(starts[g])
        if self.tensor:
            return gather(arrays, local)
        image = decode_png(arrays["image"][local].as_py(), self.path, self.rules, image=True)
        label = decode_png(arrays["label"][local].as_py(), self.path, self.rules, image=False)
        return {"image": image, "label": label, **recorded(arrays, local)}

    def read_many(self, rows: np.ndarray) -> Sample:
        return stack([self.read(int(r)) for r in rows])


def decode_png(data: bytes, path: Path, rules: LabelRules, image: bool) -> np.ndarray:
    """A PNG of the Hugging Face layout as the array the tensor layout stores."""
    if image and rules.image_dtype == np.uint16 and rules.image_bands > 1:
        array = _decode_with_opencv(data, path)
    else:
        try:
            from PIL import Image
        except ImportError as e:
            raise BuildError("the Hugging Face layout stores PNGs: `pip install pillow` to read them") from e
        with Image.open(io.BytesIO(data)) as im:
            array = np.asarray(im)
    want = rules.image_dtype if image else rules.label_dtype
    if array.dtype != want:
        array = array.astype(want) if np.can_cast(array.dtype, want) else array
    if array.dtype != want:
        raise BuildError(f"{path}: a PNG decoded as {array.dtype}, where index.json records {want}")
    if image and array.ndim == 2:
        array = array[:, :, None]
    return array


def _decode_with_opencv(data: bytes, path: Path) -> np.ndarray:
    try:
        import cv2
    except ImportError as e:
        raise BuildError(
            f"{path}: 16-bit colour PNGs need OpenCV (Pillow narrows them to 8 bits): "
            "`pip install opencv-python-headless`"
        ) from e
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise BuildError(f"{path}: a stored PNG cannot be decoded")
    return array[..., [2, 1, 0, 3][: array.shape[2]]] if array.ndim == 3 else array
