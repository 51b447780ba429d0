"""DICOM (single or multi-frame) through pydicom: header first, limits, then one frame.

Nothing is decoded before the header's size (rows x columns x frames x samples) passes the
limits. Three encodings can outgrow what their header says, so each gets its own bound first:
- Deflated Explicit VR Little Endian deflates the whole dataset, and pydicom inflates it in full
  before reading a tag: we inflate it ourselves, at most to the upload limit.
- RLE frames: pydicom's RLE decoder expands each segment until its data ends (up to 64-fold),
  not to the frame's size: frames above _MAX_RLE_FRAME_BYTES are refused.
- JPEG / JPEG 2000 frames are decoded at the size in their own header, not the DICOM one: the
  two must agree.
Grayscale frames are then shown through the file's own display transforms (voi.py).
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image

from . import limits
from .errors import ACCEPTED, ScanError, first_line
from .pixels import colour_to_uint8, scale_to_uint8, to_gray_or_rgb
from .scan import LoadedScan, pick_index
from .voi import voi_to_uint8

_PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)  # Float, Double Float and plain Pixel Data
# 64 x this is the most pydicom's RLE decoder may build for one segment; 4 MB holds a 1400 x 1400
# 16-bit frame of pure noise, more than any MRI frame needs.
_MAX_RLE_FRAME_BYTES = 4 * 2**20


def load_dicom(data: bytes, slice_index: int | None) -> LoadedScan:
    try:
        return _load(data, slice_index)
    except ScanError:
        raise
    except Exception as error:  # pydicom converts values when they are first used, so a damaged
        # element can raise almost anything (NotImplementedError for an unknown VR, BytesLengthException...)
        raise ScanError(f"The file cannot be read as DICOM ({first_line(error)}). Accepted: {ACCEPTED}.") from None


def _load(data: bytes, slice_index: int | None) -> LoadedScan:
    from pydicom.pixels import pixel_array

    ds = _read_checked(data)
    frames = _frame_count(ds)
    index = pick_index(slice_index, frames, "frame")
    _check_compressed_frame(ds, index, frames)
    try:
        # Decode only the requested frame: a multi-frame file may hold hundreds.
        arr = ds.pixel_array if frames == 1 else pixel_array(ds, index=index)
    except Exception as error:  # decoders raise many types (RuntimeError, NotImplementedError, ...)
        raise ScanError(_decode_message(ds, error)) from None
    return _to_scan(ds, np.asarray(arr), frames, index)


def _read_checked(data: bytes):
    """The parsed file, once its header has passed the size limits (pixel data read, not decoded)."""
    import pydicom
    from pydicom.filereader import read_dataset

    meta, body_start = _file_meta(data)
    if meta.get("TransferSyntaxUID") == pydicom.uid.DeflatedExplicitVRLittleEndian:
        body = _inflate(memoryview(data)[body_start:])

        def parse(stop_before_pixels: bool):
            ds = read_dataset(io.BytesIO(body), is_implicit_VR=False, is_little_endian=True,
                              stop_when=_at_pixels if stop_before_pixels else None)
            ds.file_meta = meta
            return ds
    else:
        def parse(stop_before_pixels: bool):
            return pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=stop_before_pixels)

    _check_size(parse(stop_before_pixels=True))
    ds = parse(stop_before_pixels=False)
    if not any(tag in ds for tag in _PIXEL_TAGS):
        modality = getattr(ds, "Modality", "unknown")
        raise ScanError(
            f"The DICOM file has no image (no pixel data; modality {modality}). It may be a report, "
            "a presentation state or a directory file (DICOMDIR). Upload a DICOM image file."
        )
    return ds


def _at_pixels(tag, vr, length) -> bool:
    return tag in _PIXEL_TAGS


def _file_meta(data: bytes):
    """The File Meta group (always Explicit VR Little Endian) and where the dataset after it starts."""
    from pydicom.filereader import read_dataset, read_preamble

    fp = io.BytesIO(data)
    read_preamble(fp, force=True)  # skips the preamble and "DICM" when present
    meta = read_dataset(fp, is_implicit_VR=False, is_little_endian=True, stop_when=lambda tag, vr, n: tag >> 16 != 2)
    return meta, fp.tell()


def _inflate(body: memoryview) -> bytes:
    """A deflated dataset inflated, refused as soon as it grows past the upload limit."""
    try:
        inflated = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, limits.MAX_FILE_BYTES + 1)
    except zlib.error as error:
        raise ScanError(f"The deflate-compressed DICOM file is damaged ({error}).") from None
    if len(inflated) > limits.MAX_FILE_BYTES:
        raise ScanError(
            f"The DICOM file is deflate-compressed and inflates to more than {limits.MAX_FILE_BYTES // 2**20} MB, "
            "the limit for a file. Upload a single image or a smaller series."
        )
    return inflated


def _frame_count(ds) -> int:
    return max(1, int(ds.get("NumberOfFrames") or 1))


def _check_size(header) -> None:
    rows, cols = int(header.get("Rows") or 0), int(header.get("Columns") or 0)
    frames, samples = _frame_count(header), max(1, int(header.get("SamplesPerPixel") or 1))
    limits.check_plane(cols, rows, what="DICOM frame")
    colour = f" x {samples} samples" if samples > 1 else ""
    description = f"DICOM image is {cols}x{rows} pixels x {frames} frames{colour}"
    limits.check_values(rows * cols * frames * samples, description)


def _check_compressed_frame(ds, index: int, frames: int) -> None:
    """Bound what decoding this frame can allocate, from the frame's own bytes."""
    from pydicom.encaps import get_frame
    from pydicom.uid import RLELossless

    syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    if syntax is None or not syntax.is_encapsulated or "PixelData" not in ds:
        return
    try:
        frame = get_frame(ds.PixelData, index, number_of_frames=frames)
    except Exception:  # damaged encapsulation: the decoder reports it
        return
    if syntax == RLELossless:
        if len(frame) > _MAX_RLE_FRAME_BYTES:
            raise ScanError(
                f"The DICOM frame is RLE-compressed to {len(frame) / 2**20:.0f} MB; this server decodes RLE "
                f"frames up to {_MAX_RLE_FRAME_BYTES // 2**20} MB. Export it uncompressed (Explicit VR Little Endian) "
                "or as PNG."
            )
        return
    try:
        size = Image.open(io.BytesIO(frame), formats=("JPEG", "JPEG2000")).size  # reads the header only
    except Image.DecompressionBombError:
        size = (0, 0)  # far larger than any DICOM frame we accept: refused just below
    except Exception:  # not JPEG / JPEG 2000, or damaged: the decoder reports it
        return
    columns, rows = int(ds.get("Columns") or 0), int(ds.get("Rows") or 0)
    if size != (columns, rows):
        raise ScanError(
            f"The DICOM frame's compressed image is {size[0]}x{size[1]} pixels but the DICOM header says "
            f"{columns}x{rows}: the file is inconsistent. Export it again, uncompressed or as PNG."
        )


def _decode_message(ds, error: Exception) -> str:
    from pydicom.pixels import get_decoder

    syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID", None)
    name = getattr(syntax, "name", None) or "an unknown encoding"
    try:
        undecodable = syntax is not None and not get_decoder(syntax).is_available
    except (NotImplementedError, ValueError):  # no decoder at all for it, or not a transfer syntax
        undecodable = True
    if undecodable:
        return (
            f"The DICOM image is compressed as {name}, which this server cannot decode. "
            "Export it uncompressed (Explicit VR Little Endian) or as PNG."
        )
    return f"The DICOM pixel data ({name}) cannot be decoded: it is damaged or inconsistent ({first_line(error)})."


def _to_scan(ds, arr: np.ndarray, frames: int, index: int) -> LoadedScan:
    notes = [] if frames == 1 else [f"DICOM with {frames} frames: frame {index + 1} shown"]
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):  # colour DICOM (pydicom already gives RGB)
        image = to_gray_or_rgb(Image.fromarray(colour_to_uint8(arr[..., :3]), mode="RGB"), notes)
        return LoadedScan(image=image, format="DICOM", num_slices=frames, slice_index=index, notes=notes)
    if arr.ndim != 2:
        raise ScanError(f"The DICOM pixel data has shape {arr.shape}; expected one 2-D image per frame.")
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        notes.append("rescale slope/intercept applied")
    gray = voi_to_uint8(arr, ds, notes)  # the file's own display transforms, when it has them
    if gray is None:
        from pydicom.pixels import apply_modality_lut

        # Rescale Slope/Intercept (or Modality LUT), then the percentiles of the result.
        gray = np.asarray(scale_to_uint8(arr, pixelwise=lambda block: apply_modality_lut(block, ds)))
        notes.append("no window in the file: scaled by 0.5-99.5 percentiles")
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper() == "MONOCHROME1":
        gray = 255 - gray  # MONOCHROME1 means low values are white
        notes.append("MONOCHROME1 inverted")
    return LoadedScan(image=Image.fromarray(gray, mode="L"), format="DICOM", num_slices=frames,
                      slice_index=index, notes=notes)
