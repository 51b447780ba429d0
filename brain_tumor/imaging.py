"""Turn an uploaded file into one 2-D slice the model can read, or say clearly why not.

Accepted: JPEG, PNG, BMP, TIFF (8/16-bit, float; grayscale, RGB, RGBA, palette; multi-page),
DICOM (single or multi-frame) and NIfTI-1/2 (.nii, .nii.gz). Formats are recognised by their
content (magic bytes), so a misnamed file still works and a renamed text file is refused. The
file name is only a hint, used for DICOM files written without the 128-byte preamble.

Every refusal is a `ScanError` (a ValueError) whose message says what was wrong and what is
accepted, because these messages go straight to the person who uploaded the file.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ACCEPTED = "JPEG, PNG, BMP, TIFF, DICOM (.dcm) or NIfTI (.nii, .nii.gz)"

# Limits against decompression bombs and runaway memory. A 100 MB upload covers a whole
# uncompressed 3-D MRI volume; 40 megapixels is far beyond any MRI slice (usually <= 1024^2)
# yet small enough that decoding stays well under a second and ~200 MB of memory. PIL has its
# own guard (Image.MAX_IMAGE_PIXELS, 89 Mpx); ours is stricter and checked from the header
# before any pixel is decoded.
MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_VOLUME_VOXELS = 512 * 512 * 512
MAX_SLICES = 4096
# Below this the image cannot hold a recognisable slice; the model works at 224 px.
MIN_SIDE = 32

_PIL_FORMATS = ("JPEG", "PNG", "BMP", "TIFF")


class ScanError(ValueError):
    """The file cannot be read as a 2-D scan slice; the message is meant for the user."""


@dataclass
class LoadedScan:
    """One 2-D slice ready for the model, plus what a user may want to know about the file."""

    image: Image.Image  # mode "L" (grayscale) or "RGB" (kept only when the colours differ)
    format: str  # "JPEG", "PNG", "BMP", "TIFF", "DICOM" or "NIfTI"
    num_slices: int = 1  # slices (NIfTI), frames (DICOM) or pages (TIFF) in the file
    slice_index: int = 0  # which of them `image` is
    notes: list[str] = field(default_factory=list)  # conversions applied, in plain words


def load_slice(path_or_bytes, filename: str | None = None, slice_index: int | None = None) -> LoadedScan:
    """Read a file (path or bytes) and return one 2-D slice.

    For files with several slices (3-D NIfTI, multi-frame DICOM, multi-page TIFF) the middle
    one is returned unless `slice_index` picks another; for NIfTI the slices are axial. A file
    with one slice ignores `slice_index`.
    """
    data, filename = _read_bytes(path_or_bytes, filename)
    kind = sniff_format(data, filename)
    if kind == "NIfTI":
        scan = _load_nifti(data, slice_index)
    elif kind == "DICOM":
        scan = _load_dicom(data, slice_index)
    else:
        scan = _load_pil(data, slice_index, kind)
    width, height = scan.image.size
    if min(width, height) < MIN_SIDE:
        raise ScanError(
            f"The image is only {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed "
            "to show a brain slice. Upload the original scan, not a thumbnail."
        )
    return scan


def _read_bytes(path_or_bytes, filename: str | None) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
    elif isinstance(path_or_bytes, (str, os.PathLike)):
        path = Path(path_or_bytes)
        if not path.is_file():
            raise ScanError(f"No file at {str(path)!r}.")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScanError(_too_big(size))
        data = path.read_bytes()
        filename = filename or path.name
    else:
        raise TypeError(f"load_slice takes a path or bytes, not {type(path_or_bytes).__name__}")
    if len(data) > MAX_FILE_BYTES:
        raise ScanError(_too_big(len(data)))
    if not data:
        raise ScanError(f"The file is empty (0 bytes). Upload a {ACCEPTED} file.")
    return data, filename or ""


def _too_big(size: int) -> str:
    return f"The file is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB."


# --- format sniffing ------------------------------------------------------------------------

# Formats we recognise only to refuse them with a precise message (prefix -> what it is).
_REFUSED_MAGIC = {
    b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image",
    b"PK\x03\x04": "a ZIP archive",
    b"PK\x05\x06": "an empty ZIP archive",
    b"%PDF": "a PDF document",
    b"\x00\x00\x00\x0cjP  ": "a JPEG 2000 image",
    b"8BPS": "a Photoshop document",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}


def sniff_format(data: bytes, filename: str = "") -> str:
    """Name the format of `data` from its content: one of _PIL_FORMATS, "DICOM" or "NIfTI"."""
    head = data[:512]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if len(data) > 132 and data[128:132] == b"DICM":
        return "DICOM"
    if _is_nifti_header(head):
        return "NIfTI"
    if head.startswith(b"\x1f\x8b"):
        if _is_nifti_header(_gunzip_head(data)):
            return "NIfTI"
        raise ScanError(
            "The file is gzip-compressed but does not contain a NIfTI volume "
            f"(or it is damaged). Accepted: {ACCEPTED}."
        )
    for magic, what in _REFUSED_MAGIC.items():
        if head.startswith(magic):
            raise ScanError(f"The file is {what}, which is not accepted. Upload one {ACCEPTED} file.")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        raise ScanError(f"The file is a WebP image, which is not accepted. Upload one {ACCEPTED} file.")
    lower = filename.lower()
    if lower.endswith((".dcm", ".dicom")) or _looks_like_raw_dicom(head):
        return "DICOM"  # DICOM written without the preamble; pydicom reads it with force=True
    if lower.endswith((".nii", ".nii.gz")):
        raise ScanError(
            f"The file is named {filename!r} but is not a NIfTI volume: its header is missing "
            f"or damaged. Accepted: {ACCEPTED}."
        )
    if _looks_like_text(head):
        raise ScanError(f"The file contains text, not an image. Upload one {ACCEPTED} file.")
    raise ScanError(f"The file is not in a format this tool reads. Accepted: {ACCEPTED}.")


def _is_nifti_header(head: bytes) -> bool:
    if len(head) < 348:
        return False
    for order in "<>":
        sizeof_hdr = struct.unpack(order + "i", head[:4])[0]
        if sizeof_hdr == 348 and head[344:348] in (b"n+1\x00", b"ni1\x00"):
            return True
        if sizeof_hdr == 540 and head[4:8] in (b"n+2\x00", b"ni2\x00"):
            return True
    return False


def _gunzip_head(data: bytes, size: int = 540) -> bytes:
    """First `size` decompressed bytes, without inflating the rest (a gzip bomb stays small)."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, size)
    except zlib.error:
        return b""


def _looks_like_raw_dicom(head: bytes) -> bool:
    # Preamble-less DICOM starts with group 0x0002 or 0x0008 tags (little endian).
    elements = (b"\x00\x00", b"\x05\x00", b"\x10\x00", b"\x16\x00", b"\x18\x00")
    return len(head) >= 4 and head[:2] in (b"\x02\x00", b"\x08\x00") and head[2:4] in elements


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


# --- PIL formats ----------------------------------------------------------------------------


def _load_pil(data: bytes, slice_index: int | None, kind: str) -> LoadedScan:
    try:
        img = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    except Image.DecompressionBombError:
        raise ScanError(
            f"The image is too large to decode safely; the limit is {MAX_PIXELS / 1e6:.0f} megapixels."
        ) from None
    except (OSError, SyntaxError, ValueError, struct.error) as error:
        raise ScanError(
            f"The file looks like {kind} but cannot be opened: it is damaged or truncated ({error})."
        ) from None
    fmt = img.format or "image"
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ScanError(
            f"The image is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels. Upload a single slice at its original size."
        )
    num_pages = min(getattr(img, "n_frames", 1), MAX_SLICES)
    index = _pick_index(slice_index, num_pages, "page")
    notes = []
    try:
        if num_pages > 1:
            img.seek(index)
            notes.append(f"{fmt} with {num_pages} pages: page {index + 1} shown")
        img.load()
        if fmt == "JPEG":
            img = ImageOps.exif_transpose(img)
        image = _to_gray_or_rgb(img, notes)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        raise ScanError(f"The {fmt} file cannot be decoded: it is damaged or truncated ({error}).") from None
    return LoadedScan(image=image, format=fmt, num_slices=num_pages, slice_index=index, notes=notes)


def _to_gray_or_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """Convert any PIL mode to "L", or to "RGB" when the picture really has colour."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        depth = "16-bit" if mode.startswith("I;16") else f"{mode}-mode"
        notes.append(f"{depth} image scaled to 8-bit by its 0.5-99.5 percentiles")
        return scale_to_uint8(np.asarray(img))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Transparent areas are background; MRI background is black, so composite onto black.
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, rgba).convert("RGB")
        notes.append("transparency composited onto black")
    elif mode == "CMYK":
        notes.append("CMYK converted to RGB")
        img = img.convert("RGB")
    elif mode != "L":
        img = img.convert("RGB")
    if img.mode == "RGB":
        arr = np.asarray(img).astype(np.int16)
        # Many MRI exports are grayscale stored as RGB; JPEG chroma noise leaves small differences.
        if np.abs(arr - arr.mean(axis=2, keepdims=True)).max() <= 8:
            img = img.convert("L")
    return img


def scale_to_uint8(arr: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> Image.Image:
    """Map a wide-range array to 8-bit grayscale by robust percentiles (outliers clip)."""
    arr = np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = np.percentile(arr, [low_pct, high_pct])
    if high <= low:  # constant image: nothing to stretch, keep it uniformly dark
        return Image.fromarray(np.zeros(arr.shape, dtype=np.uint8), mode="L")
    scaled = np.clip((arr - low) / (high - low), 0.0, 1.0) * 255.0
    return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")


def _pick_index(slice_index: int | None, count: int, what: str) -> int:
    # A 2-D image is its own only slice whatever index is asked for, so one `--slice` works
    # on a folder that mixes volumes and plain images.
    if slice_index is None or count == 1:
        return count // 2  # the middle slice of a stack usually cuts through the brain
    if not 0 <= int(slice_index) < count:
        plural = "s" if count != 1 else ""
        raise ScanError(f"The file has {count} {what}{plural} (0 to {count - 1}); {what} {slice_index} does not exist.")
    return int(slice_index)


# --- DICOM ----------------------------------------------------------------------------------


def _load_dicom(data: bytes, slice_index: int | None) -> LoadedScan:
    import pydicom  # imported here: only DICOM uploads pay for it
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, OSError, ValueError, struct.error, EOFError, KeyError) as error:
        raise ScanError(f"The file cannot be read as DICOM ({error}). Accepted: {ACCEPTED}.") from None
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        modality = getattr(ds, "Modality", "unknown")
        raise ScanError(
            f"The DICOM file has no image (no pixel data; modality {modality}). It may be a report, "
            "a presentation state or a directory file (DICOMDIR). Upload a DICOM image file."
        )
    rows, cols = int(getattr(ds, "Rows", 0)), int(getattr(ds, "Columns", 0))
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if rows * cols > MAX_PIXELS or rows * cols * frames > MAX_VOLUME_VOXELS:
        raise ScanError(f"The DICOM image is {cols}x{rows} pixels x {frames} frames; this is above the size limit.")
    index = _pick_index(slice_index, frames, "frame")
    try:
        arr = ds.pixel_array if frames == 1 else _dicom_frame(ds, index)
    except Exception as error:  # decoders raise many types (RuntimeError, NotImplementedError, ...)
        raise ScanError(_dicom_decode_message(ds, error)) from None
    return _dicom_to_scan(ds, np.asarray(arr), frames, index)


def _dicom_decode_message(ds, error: Exception) -> str:
    from pydicom.pixels import get_decoder

    syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID", None)
    name = getattr(syntax, "name", None) or "an unknown encoding"
    try:
        undecodable = syntax is not None and not get_decoder(syntax).is_available
    except NotImplementedError:  # a transfer syntax pydicom has no decoder for at all
        undecodable = True
    if undecodable:
        return (
            f"The DICOM image is compressed as {name}, which this server cannot decode. "
            "Export it uncompressed (Explicit VR Little Endian) or as PNG."
        )
    return f"The DICOM pixel data ({name}) cannot be decoded: it is damaged or inconsistent ({_first_line(error)})."


def _dicom_frame(ds, index: int) -> np.ndarray:
    from pydicom.pixels import pixel_array

    # Decode only the requested frame: a multi-frame file may hold hundreds.
    return pixel_array(ds, index=index)


def _dicom_to_scan(ds, arr: np.ndarray, frames: int, index: int) -> LoadedScan:
    notes = [] if frames == 1 else [f"DICOM with {frames} frames: frame {index + 1} shown"]
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):  # colour DICOM (pydicom already gives RGB)
        image = Image.fromarray(_colour_to_uint8(arr[..., :3]), mode="RGB")
        image = _to_gray_or_rgb(image, notes)
        return LoadedScan(image=image, format="DICOM", num_slices=frames, slice_index=index, notes=notes)
    if arr.ndim != 2:
        raise ScanError(f"The DICOM pixel data has shape {arr.shape}; expected one 2-D image per frame.")
    from pydicom.pixels import apply_modality_lut

    values = apply_modality_lut(arr, ds).astype(np.float64)  # Rescale Slope/Intercept (or LUT)
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        notes.append("rescale slope/intercept applied")
    window = _dicom_window(ds)
    if window is not None:
        centre, width = window
        gray = window_to_uint8(values, centre, width)
        notes.append(f"window centre {centre:g} / width {width:g} applied")
    else:
        gray = np.asarray(scale_to_uint8(values))
        notes.append("no window in the file: scaled by 0.5-99.5 percentiles")
    if photometric == "MONOCHROME1":  # MONOCHROME1 means low values are white
        gray = 255 - gray
        notes.append("MONOCHROME1 inverted")
    image = Image.fromarray(gray, mode="L")
    return LoadedScan(image=image, format="DICOM", num_slices=frames, slice_index=index, notes=notes)


def _dicom_window(ds) -> tuple[float, float] | None:
    from pydicom.multival import MultiValue

    centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centre is None or width is None or centre == "" or width == "":
        return None
    # Both may be multi-valued (several suggested windows): the first is the default one.
    centre = float(centre[0] if isinstance(centre, MultiValue) else centre)
    width = float(width[0] if isinstance(width, MultiValue) else width)
    return (centre, width) if width >= 1 else None


def window_to_uint8(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """DICOM linear VOI windowing (PS3.3 C.11.2.1.2.1) onto 0..255."""
    scaled = ((values - (centre - 0.5)) / (width - 1) + 0.5) if width > 1 else (values >= centre).astype(float)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def _colour_to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    return np.asarray(scale_to_uint8(arr.astype(np.float64))) if arr.ndim == 2 else np.stack(
        [np.asarray(scale_to_uint8(arr[..., c])) for c in range(3)], axis=-1
    )


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# --- NIfTI ----------------------------------------------------------------------------------


def _load_nifti(data: bytes, slice_index: int | None) -> LoadedScan:
    import nibabel as nib  # imported here: only NIfTI uploads pay for it

    stream = gzip.GzipFile(fileobj=io.BytesIO(data)) if data[:2] == b"\x1f\x8b" else io.BytesIO(data)
    head = stream.read(4)
    stream.seek(0)
    sizeof_hdr = struct.unpack("<i", head)[0] if len(head) == 4 else 0
    image_class = nib.Nifti2Image if 540 in (sizeof_hdr, struct.unpack(">i", head)[0]) else nib.Nifti1Image
    try:
        img = image_class.from_stream(stream)
    except Exception as error:  # nibabel raises HeaderDataError, ImageFileError, ValueError...
        raise ScanError(f"The NIfTI header cannot be read ({_first_line(error)}).") from None

    shape = tuple(int(n) for n in img.shape)
    while len(shape) > 3 and shape[-1] == 1:  # trailing singleton dimensions carry nothing
        shape = shape[:-1]
    if len(shape) > 3:
        raise ScanError(
            f"The NIfTI file is {len(shape)}-D ({'x'.join(map(str, shape))}): a time series or a "
            "multi-volume scan. Upload a 3-D structural volume or a single 2-D slice."
        )
    if int(np.prod(shape, dtype=np.int64)) > MAX_VOLUME_VOXELS:
        dims = "x".join(map(str, shape))
        raise ScanError(f"The NIfTI volume is {dims} voxels; the limit is {MAX_VOLUME_VOXELS:,} voxels.")
    axes = [i for i, n in enumerate(shape) if n > 1]
    if len(axes) < 2:
        raise ScanError(f"The NIfTI file has shape {shape}; it holds no 2-D image.")

    # Slice across the voxel axis closest to the head-foot direction, so the slices are axial
    # whatever the storage order; a file with one plane only is shown as that plane.
    ornt = nib.io_orientation(img.affine)
    if np.isnan(ornt).any():  # degenerate affine: trust the storage order
        ornt = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)
    axial_axis = None
    if len(axes) == 3:
        axial_axis = int(np.flatnonzero(ornt[:, 0] == 2)[0])
    count = shape[axial_axis] if axial_axis is not None else 1
    index = _pick_index(slice_index, count, "slice")
    try:
        if axial_axis is None:
            arr = np.asarray(img.dataobj).reshape([shape[i] for i in axes])
            in_plane = axes
        else:
            slicer = [slice(None)] * 3
            slicer[axial_axis] = index
            arr = np.asarray(img.dataobj[tuple(slicer)])
            in_plane = [i for i in range(3) if i != axial_axis]
            arr = arr.reshape([shape[i] for i in in_plane])
    except Exception as error:  # truncated data, bad dtype...
        raise ScanError(
            f"The NIfTI image data cannot be read: it is damaged or truncated ({_first_line(error)})."
        ) from None
    arr = _orient_slice(arr, ornt[in_plane])
    notes = ["scaled to 8-bit by the slice's 0.5-99.5 percentiles"]
    if count > 1:
        notes.insert(0, f"3-D volume with {count} axial slices: slice {index} shown")
    return LoadedScan(image=scale_to_uint8(arr), format="NIfTI", num_slices=count, slice_index=index, notes=notes)


def _orient_slice(arr: np.ndarray, ornt: np.ndarray) -> np.ndarray:
    """Show a 2-D slice as a radiology viewer does.

    `ornt` gives, for each array axis, the RAS world axis it runs along and its sign. The slice
    is first put in world order (first axis = lower world axis, both increasing), then displayed
    with the higher world axis (anterior, or superior) at the top and the lower one (patient's
    right) on the image's left: the radiological convention of the dataset's JPEGs.
    """
    if ornt[0, 0] > ornt[1, 0]:  # stored as (A-P, R-L): swap to (R-L, A-P)
        arr, ornt = arr.T, ornt[::-1]
    if ornt[0, 1] < 0:
        arr = arr[::-1, :]
    if ornt[1, 1] < 0:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr[::-1, ::-1].T)
