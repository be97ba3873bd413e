"""NPZ shards: stored members memory-mapped where they lie inside the zip, deflated ones read whole.

An NPZ file is a zip of `.npy` members. A member written without compression is the `.npy` bytes
themselves at a known offset, so numpy can view it in place: no copy until the caller asks.
"""

from __future__ import annotations

import io
import mmap
import struct
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from ._errors import BuildError

LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
LOCAL_HEADER_MAGIC = b"PK\x03\x04"


def member_offset(mapped: mmap.mmap, info: zipfile.ZipInfo, path: Path) -> int:
    """Where a stored member's bytes start: after its local header, name and extra field."""
    start = info.header_offset
    fields = LOCAL_HEADER.unpack_from(mapped, start)
    if fields[0] != LOCAL_HEADER_MAGIC:
        raise BuildError(f"{path}: member {info.filename} has no zip local header; the file is damaged")
    name_length, extra_length = fields[9], fields[10]
    return start + LOCAL_HEADER.size + name_length + extra_length


def view_npy(mapped: mmap.mmap, offset: int, size: int, path: Path, name: str) -> np.ndarray:
    """The `.npy` array stored at `offset`, as a read-only view into the mapping."""
    header = io.BytesIO(mapped[offset : offset + min(size, 65536)])
    try:
        version = npy_format.read_magic(header)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(header)
        else:
            shape, fortran, dtype = npy_format.read_array_header_2_0(header)
    except ValueError as e:
        raise BuildError(f"{path}: member {name} is not a valid .npy array ({e})") from e
    if dtype.hasobject or fortran:
        raise BuildError(f"{path}: member {name} holds {dtype} (fortran order {fortran}), not a segprep array")
    data = offset + header.tell()
    count = int(np.prod(shape, dtype=np.int64))
    if data + count * dtype.itemsize > offset + size:
        raise BuildError(f"{path}: member {name} is shorter than its header says; the file is damaged")
    return np.frombuffer(mapped, dtype=dtype, count=count, offset=data).reshape(shape)


def open_npz(path: Path) -> tuple[dict[str, np.ndarray], bool]:
    """Every member of an NPZ file as an array, and whether all were memory-mapped (stored)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            stored = all(i.compress_type == zipfile.ZIP_STORED for i in infos)
            if not stored:
                return {i.filename.removesuffix(".npy"): read_member(archive, i, path) for i in infos}, False
    except (zipfile.BadZipFile, OSError) as e:
        raise BuildError(f"{path}: cannot read as NPZ ({e})") from e
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    arrays = {}
    for info in infos:
        offset = member_offset(mapped, info, path)
        arrays[info.filename.removesuffix(".npy")] = view_npy(mapped, offset, info.file_size, path, info.filename)
    return arrays, True


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    try:
        with archive.open(info) as member:
            return npy_format.read_array(member, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile) as e:
        raise BuildError(f"{path}: member {info.filename} cannot be read ({e})") from e
