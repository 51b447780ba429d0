"""Size limits, checked from each file's header before any pixel is decoded.

A 100 MB upload covers a whole uncompressed 3-D MRI volume; 40 megapixels is far beyond any MRI
slice (usually <= 1024^2) yet small enough that decoding one stays within a few hundred MB of
memory. PIL has its own guard (Image.MAX_IMAGE_PIXELS, 89 Mpx) with its own message; ours is
stricter and speaks to the user. The checks read the limits at call time, so a test can lower
them with `monkeypatch.setattr(limits, "MAX_FILE_BYTES", ...)`.
"""

from __future__ import annotations

from .errors import ScanError

MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_PIXELS = 40_000_000  # per 2-D slice, frame or page
MAX_VOLUME_VOXELS = 512 * 512 * 512  # values in a whole file: voxels, or pixels x frames x samples
MAX_SLICES = 4096
# Below this the image cannot hold a recognisable slice; the model works at 224 px.
MIN_SIDE = 32


def check_file_size(size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise ScanError(f"The file is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")


def check_plane(width: int, height: int, what: str = "image") -> None:
    """One 2-D slice (image, page, frame or volume plane) against the pixel limit."""
    if width * height > MAX_PIXELS:
        raise ScanError(
            f"The {what} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels. Upload a single slice at its original size."
        )


def check_values(count: int, description: str) -> None:
    """A whole file's worth of values (voxels, or pixels x frames x samples) against the volume limit."""
    if count > MAX_VOLUME_VOXELS:
        raise ScanError(
            f"The {description}: {count:,} values; the limit is {MAX_VOLUME_VOXELS:,} "
            f"(a {round(MAX_VOLUME_VOXELS ** (1 / 3))}^3 volume). Upload a single slice or a smaller volume."
        )


def check_min_side(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise ScanError(
            f"The image is only {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed "
            "to show a brain slice. Upload the original scan, not a thumbnail."
        )
