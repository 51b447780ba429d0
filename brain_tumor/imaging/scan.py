"""What every reader returns (one 2-D slice plus notes for the user), and how a slice is picked."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from .errors import ScanError


@dataclass
class LoadedScan:
    """One 2-D slice ready for the model, plus what a user may want to know about the file."""

    image: Image.Image  # mode "L" (grayscale) or "RGB" (kept only when the colours differ)
    format: str  # "JPEG", "PNG", "BMP", "TIFF", "DICOM" or "NIfTI"
    num_slices: int = 1  # slices (NIfTI), frames (DICOM) or pages (TIFF) in the file
    slice_index: int = 0  # which of them `image` is
    notes: list[str] = field(default_factory=list)  # conversions applied, in plain words


def pick_index(slice_index: int | None, count: int, what: str) -> int:
    """The slice to show: the one asked for, else the middle one (it usually cuts through the brain)."""
    # A 2-D image is its own only slice whatever index is asked for, so one `--slice` works
    # on a folder that mixes volumes and plain images.
    if slice_index is None or count == 1:
        return count // 2
    if not 0 <= int(slice_index) < count:
        plural = "s" if count != 1 else ""
        raise ScanError(f"The file has {count} {what}{plural} (0 to {count - 1}); {what} {slice_index} does not exist.")
    return int(slice_index)
