"""JPEG, PNG, BMP and TIFF (8/16-bit, float; gray, RGB, RGBA, palette; multi-page) through Pillow.

Each page's size is read from its header and checked before the page is decoded: Pillow only
looks at the first page when it opens a file, and its own bomb guard would answer with its own
message (or not at all below 179 megapixels).
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageOps

from . import limits
from .errors import ScanError
from .pixels import to_gray_or_rgb
from .scan import LoadedScan, pick_index
from .sniff import RASTER_FORMATS

# What Pillow raises for damaged files (TypeError: a TIFF page without its dimensions; zlib.error:
# a broken compressed stream).
_DAMAGED = (OSError, SyntaxError, ValueError, EOFError, TypeError, struct.error, zlib.error)


def load_raster(data: bytes, slice_index: int | None, kind: str) -> LoadedScan:
    try:
        img = Image.open(io.BytesIO(data), formats=RASTER_FORMATS)
    except Image.DecompressionBombError:  # Pillow's own guard, above 179 megapixels
        raise ScanError(_too_large()) from None
    except _DAMAGED as error:
        raise ScanError(
            f"The file looks like {kind} but cannot be opened: it is damaged or truncated ({error})."
        ) from None
    fmt = img.format or "image"
    limits.check_plane(*img.size)
    try:
        num_pages = _count_pages(img)
        index = pick_index(slice_index, num_pages, "page")
        notes = []
        if num_pages > 1:
            img.seek(index)  # reads this page's header, not its pixels
            limits.check_plane(*img.size, what=f"{fmt} page {index + 1}")
            notes.append(f"{fmt} with {num_pages} pages: page {index + 1} shown")
        img.load()
        if fmt == "JPEG":
            img = ImageOps.exif_transpose(img)
        image = to_gray_or_rgb(img, notes)
    except ScanError:  # our own refusals (page out of range, page too large) are ValueErrors too
        raise
    except Image.DecompressionBombError:  # not expected after our checks; Pillow's guard is the backstop
        raise ScanError(_too_large()) from None
    except _DAMAGED as error:
        raise ScanError(f"The {fmt} file cannot be decoded: it is damaged or truncated ({error}).") from None
    return LoadedScan(image=image, format=fmt, num_slices=num_pages, slice_index=index, notes=notes)


def _too_large() -> str:
    return f"The image is too large to decode safely; the limit is {limits.MAX_PIXELS / 1e6:.0f} megapixels."


def _count_pages(img: Image.Image) -> int:
    """Pages in the file, at most MAX_SLICES (a file with more shows one of the first ones).

    Pillow's TIFF `n_frames` reads every page header, however many there are: 100,000 empty
    pages (11 MB) took 125 s. Counting stops at the limit instead.
    """
    if img.format != "TIFF":
        return min(getattr(img, "n_frames", 1), limits.MAX_SLICES)  # read from one header (APNG) or 1
    count = 1
    while count < limits.MAX_SLICES:
        try:
            img.seek(count)  # reads that page's header, not its pixels
        except EOFError:
            break
        count += 1
    return count
