"""A minimal uncompressed TIFF writer for test data (any band count, u8/u16/f32, chunky or planar).
Pillow cannot write 16-bit multi-band TIFFs, and tifffile is not a test dependency."""

import struct

import numpy as np

_FORMAT = {np.dtype("uint8"): 1, np.dtype("uint16"): 1, np.dtype("float32"): 3}


def write_tiff(path, array, planar=False, rgb=False):
    a = np.ascontiguousarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    a = a.astype(a.dtype.newbyteorder("<"))
    bits = a.dtype.itemsize * 8
    planes = [np.ascontiguousarray(a[:, :, b]).tobytes() for b in range(c)] if planar else [a.tobytes()]
    base = 3 if rgb else 1
    entries = []  # (tag, type, values); SHORT = 3, LONG = 4

    def short(tag, values):
        entries.append((tag, 3, list(values)))

    def long(tag, values):
        entries.append((tag, 4, list(values)))

    long(256, [w])
    long(257, [h])
    short(258, [bits] * c)
    short(259, [1])
    short(262, [2 if rgb else 1])
    long(273, [0] * len(planes))  # strip offsets, patched below
    short(277, [c])
    long(278, [h])
    long(279, [len(p) for p in planes])
    short(284, [2 if planar else 1])
    if c > base:
        short(338, [0] * (c - base))
    short(339, [_FORMAT[a.dtype.newbyteorder("=")]] * c)
    entries.sort()
    ifd_size = 2 + 12 * len(entries) + 4
    extra_at = 8 + ifd_size
    extra = b""
    offsets = {}
    for tag, typ, values in entries:
        size = (2 if typ == 3 else 4) * len(values)
        if size > 4:
            offsets[tag] = extra_at + len(extra)
            extra += b"\0" * size
            if len(extra) % 2:
                extra += b"\0"
    data_at = extra_at + len(extra)
    strip_offsets, at = [], data_at
    for p in planes:
        strip_offsets.append(at)
        at += len(p)
    ifd = struct.pack("<H", len(entries))
    extra = bytearray(extra)
    for tag, typ, values in entries:
        if tag == 273:
            values = strip_offsets
        fmt = "<" + ("H" if typ == 3 else "I") * len(values)
        packed = struct.pack(fmt, *values)
        if len(packed) <= 4:
            ifd += struct.pack("<HHI", tag, typ, len(values)) + packed.ljust(4, b"\0")
        else:
            o = offsets[tag]
            extra[o - extra_at : o - extra_at + len(packed)] = packed
            ifd += struct.pack("<HHII", tag, typ, len(values), o)
    ifd += struct.pack("<I", 0)
    with open(path, "wb") as f:
        f.write(b"II*\0" + struct.pack("<I", 8) + ifd + bytes(extra) + b"".join(planes))
