"""Broken image files for the bad-input tests: truncated, not an image, and decompression bombs (a
header claiming 400 M pixels over a few bytes of data, as PNG and as JPEG)."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

KINDS = ("truncated", "not-an-image", "bomb")


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_bomb(side: int = 20000, mode_byte: int = 0) -> bytes:
    """A PNG whose header says ``side`` x ``side`` 8-bit pixels (colour type ``mode_byte``)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, mode_byte, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def jpeg_bomb(side: int = 20000) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 40, 20)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    i = data.index(b"\xff\xc0")  # SOF0: length (2), precision (1), height (2), width (2)
    data[i + 5:i + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def break_image(path: Path, kind: str) -> Path:
    """Replace the image file ``path`` (a valid PNG or JPEG) by a broken one of the same name and format."""
    path = Path(path)
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    if kind == "truncated":
        with Image.open(path) as im:
            arr = np.asarray(im)
        buf = io.BytesIO()
        noisy = np.random.default_rng(0).integers(0, 256, arr.shape, dtype=np.uint8) if arr.ndim == 3 else arr
        Image.fromarray(noisy).save(buf, format="JPEG" if jpeg else "PNG")
        data = buf.getvalue()
        path.write_bytes(data[: max(len(data) // 2, 60)])
    elif kind == "not-an-image":
        path.write_text("this is not an image\n")
    elif kind == "bomb":
        path.write_bytes(jpeg_bomb() if jpeg else png_bomb())
    else:
        raise ValueError(kind)
    return path
