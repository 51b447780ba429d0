"""Turn an uploaded file into one 2-D slice the model can read, or say clearly why not.

Accepted: JPEG, PNG, BMP, TIFF (8/16-bit, float; grayscale, RGB, RGBA, palette; multi-page),
DICOM (single or multi-frame) and NIfTI-1/2 (.nii, .nii.gz). `load_slice` names the format from
the content (sniff.py) and hands the bytes to that format's reader (raster.py, dicom.py,
nifti.py). Every reader checks the size limits (limits.py) from the file's header before it
decodes a pixel, and every refusal is a `ScanError` whose message is meant for the user.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import limits
from .dicom import load_dicom
from .errors import ACCEPTED, ScanError
from .limits import MAX_FILE_BYTES, MAX_PIXELS, MAX_SLICES, MAX_VOLUME_VOXELS, MIN_SIDE
from .nifti import load_nifti
from .pixels import scale_to_uint8, to_gray_or_rgb
from .raster import load_raster
from .scan import LoadedScan
from .sniff import sniff_format

_to_gray_or_rgb = to_gray_or_rgb  # the name inference.py imports

__all__ = [
    "ACCEPTED", "MAX_FILE_BYTES", "MAX_PIXELS", "MAX_SLICES", "MAX_VOLUME_VOXELS", "MIN_SIDE",
    "LoadedScan", "ScanError", "load_slice", "scale_to_uint8", "sniff_format", "to_gray_or_rgb",
]


def load_slice(path_or_bytes, filename: str | None = None, slice_index: int | None = None) -> LoadedScan:
    """Read a file (path or bytes) and return one 2-D slice.

    For files with several slices (3-D NIfTI, multi-frame DICOM, multi-page TIFF) the middle
    one is returned unless `slice_index` picks another; for NIfTI the slices are axial. A file
    with one slice ignores `slice_index`.
    """
    data, filename = _read_bytes(path_or_bytes, filename)
    kind = sniff_format(data, filename)
    if kind == "NIfTI":
        scan = load_nifti(data, slice_index)
    elif kind == "DICOM":
        scan = load_dicom(data, slice_index)
    else:
        scan = load_raster(data, slice_index, kind)
    limits.check_min_side(*scan.image.size)
    return scan


def _read_bytes(path_or_bytes, filename: str | None) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
    elif isinstance(path_or_bytes, (str, os.PathLike)):
        path = Path(path_or_bytes)
        if not path.is_file():
            raise ScanError(f"No file at {str(path)!r}.")
        limits.check_file_size(path.stat().st_size)  # before reading it into memory
        data = path.read_bytes()
        filename = filename or path.name
    else:
        raise TypeError(f"load_slice takes a path or bytes, not {type(path_or_bytes).__name__}")
    limits.check_file_size(len(data))
    if not data:
        raise ScanError(f"The file is empty (0 bytes). Upload a {ACCEPTED} file.")
    return data, filename or ""
