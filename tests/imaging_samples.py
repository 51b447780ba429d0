"""Scan files for the imaging tests, written for real in tmp_path: a head phantom in every format,
and the bad-input matrix (`bad_files`, `BAD_NAMES`) that the format tests and the app tests share.

Decisions the matrix pins down (valid and answered / refused with a message):
  answered: 16-bit PNG, RGBA PNG, CMYK JPEG, palette PNG, all-black image (the OOD check then
            flags it; see test_inference), plain NIfTI misnamed .nii.gz (content wins)
  refused:  empty file, truncated JPEG, text renamed .jpg, 20000x20000 PNG, 8000x8000 PNG,
            animated GIF, 1x1 image, DICOM without pixel data, DICOM in JPEG-LS (no decoder here),
            DICOM with truncated pixel data, 4-D NIfTI, text named .nii.gz, gzip that is not NIfTI,
            ZIP, PDF, WebP, random bytes,
            truncated NIfTI, a slice index out of range, a file over the size limit
"""

import gzip
import io
import struct
import zipfile
import zlib

import nibabel as nib
import numpy as np
import pytest
from PIL import Image


def head_phantom(size: int = 96) -> np.ndarray:
    """A bright ellipse on black with a darker blob: enough structure to check orientation."""
    yy, xx = np.mgrid[:size, :size]
    head = (((xx - size / 2) / (size * 0.4)) ** 2 + ((yy - size / 2) / (size * 0.45)) ** 2) <= 1
    img = np.where(head, 150, 0).astype(np.float64)
    img[(xx - size * 0.6) ** 2 + (yy - size * 0.4) ** 2 < (size * 0.08) ** 2] = 250
    return img


def save_pil(path, img, **kwargs):
    img.save(path, **kwargs)
    return path


def dicom_dataset(pixels=None, photometric="MONOCHROME2", slope=None, intercept=None, window=None, syntax=None):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    if pixels is not None:
        ds.set_pixel_data(np.asarray(pixels, dtype=np.uint16), photometric_interpretation=photometric, bits_stored=12)
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if syntax is not None:  # pretend-compressed: encapsulated fragments no decoder here can read
        from pydicom.encaps import encapsulate

        ds.file_meta.TransferSyntaxUID = syntax
        ds.Rows, ds.Columns = 64, 64
        ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 16, 12, 11, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + bytes(200)])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    return ds


def write_dicom(path, pixels=None, photometric="MONOCHROME2", slope=None, intercept=None, window=None, syntax=None):
    dicom_dataset(pixels, photometric, slope, intercept, window, syntax).save_as(path, enforce_file_format=True)
    return path


def write_nifti(path, volume, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(volume), np.eye(4) if affine is None else affine), str(path))
    return path


def png_header_only(width, height) -> bytes:
    """A valid PNG of one colour, any size, without holding the pixels: rows streamed to zlib."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = bytes(1 + width)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", body) + chunk(b"IEND", b"")


JPEG_LS = "1.2.840.10008.1.2.4.80"  # JPEG-LS Lossless: needs a plugin this project does not install


def _truncated_dicom(root) -> bytes:
    data = write_dicom(root / "full.dcm", np.full((64, 64), 100)).read_bytes()
    return data[:-3000]  # the pixel data element now claims more bytes than the file holds


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """name -> (bytes, filename, expected words in the message)."""
    root = tmp_path_factory.mktemp("bad")
    jpeg = io.BytesIO()
    Image.fromarray(head_phantom().astype(np.uint8)).save(jpeg, format="JPEG")
    gif = io.BytesIO()
    frames = [Image.new("L", (64, 64), v) for v in (0, 128, 255)]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    tiny = io.BytesIO()
    Image.new("L", (1, 1), 128).save(tiny, format="PNG")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("scan.jpg", jpeg.getvalue())
    webp = io.BytesIO()
    Image.new("L", (64, 64)).save(webp, format="WEBP")
    nifti4d = write_nifti(root / "4d.nii.gz", np.zeros((16, 16, 8, 5), dtype=np.int16)).read_bytes()
    nifti = write_nifti(root / "ok.nii", np.zeros((64, 64, 64), dtype=np.int16)).read_bytes()
    rng = np.random.default_rng(0)
    return {
        "empty": (b"", "empty.jpg", "empty"),
        "truncated_jpeg": (jpeg.getvalue()[: len(jpeg.getvalue()) // 2], "cut.jpg", "damaged or truncated"),
        "text_renamed_jpg": (b"Patient notes: nothing to see here.\n" * 20, "notes.jpg", "contains text"),
        "png_20000x20000": (png_header_only(20000, 20000), "huge.png", "too large"),
        "png_8000x8000": (png_header_only(8000, 8000), "big.png", "megapixels"),
        "animated_gif": (gif.getvalue(), "anim.gif", "GIF"),
        "one_pixel": (tiny.getvalue(), "dot.png", "32x32"),
        "dicom_no_pixels": (write_dicom(root / "nopix.dcm").read_bytes(), "nopix.dcm", "no image"),
        "dicom_jpeg_ls": (write_dicom(root / "jls.dcm", syntax=JPEG_LS).read_bytes(), "jls.dcm", "cannot decode"),
        "dicom_truncated_pixels": (_truncated_dicom(root), "cut.dcm", "damaged"),
        "nifti_4d": (nifti4d, "4d.nii.gz", "4-D"),
        "text_named_nii_gz": (b"not a volume at all\n" * 30, "brain.nii.gz", "not a NIfTI"),
        "gzip_not_nifti": (gzip.compress(b"hello " * 200), "brain.nii.gz", "gzip-compressed"),
        "zip": (zipped.getvalue(), "scans.zip", "ZIP"),
        "pdf": (b"%PDF-1.7\n" + bytes(600), "report.pdf", "PDF"),
        "webp": (webp.getvalue(), "scan.webp", "WebP"),
        "random_bytes": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "blob.bin", "not in a format"),
        "truncated_nifti": (nifti[:1000], "cut.nii", "damaged or truncated"),
    }


BAD_NAMES = [
    "empty", "truncated_jpeg", "text_renamed_jpg", "png_20000x20000", "png_8000x8000", "animated_gif",
    "one_pixel", "dicom_no_pixels", "dicom_jpeg_ls", "dicom_truncated_pixels", "nifti_4d", "text_named_nii_gz",
    "gzip_not_nifti",
    "zip", "pdf", "webp", "random_bytes", "truncated_nifti",
]
