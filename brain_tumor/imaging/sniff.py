"""Name a file's format from its content (magic bytes), or refuse it with a precise message.

Content wins over the name, so a misnamed file still works and a renamed text file is refused.
The file name is only a hint, used for DICOM files written without the 128-byte preamble.
"""

from __future__ import annotations

import zlib

from .errors import ACCEPTED, ScanError

RASTER_FORMATS = ("JPEG", "PNG", "BMP", "TIFF")

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

_NIFTI_HEADER_BYTES = 540  # a NIfTI-2 header; NIfTI-1 needs 348


def sniff_format(data: bytes, filename: str = "") -> str:
    """Name the format of `data` from its content: one of RASTER_FORMATS, "DICOM" or "NIfTI"."""
    head = data[:_NIFTI_HEADER_BYTES]
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
    if is_nifti_header(head):
        return "NIfTI"
    if head.startswith(b"\x1f\x8b"):
        if is_nifti_header(gunzip_head(data)):
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
    if _looks_like_text(head[:512]):
        raise ScanError(f"The file contains text, not an image. Upload one {ACCEPTED} file.")
    raise ScanError(f"The file is not in a format this tool reads. Accepted: {ACCEPTED}.")


def is_nifti_header(head: bytes) -> bool:
    """True when `head` starts with a NIfTI-1 or NIfTI-2 header (either byte order)."""
    if len(head) < 348:
        return False  # too short for any NIfTI header: no need to import nibabel
    from nibabel import Nifti1Header, Nifti2Header  # imported here: only non-raster uploads pay for it

    return bool(Nifti1Header.may_contain_header(head) or Nifti2Header.may_contain_header(head))


def gunzip_head(data: bytes, size: int = _NIFTI_HEADER_BYTES) -> bytes:
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
