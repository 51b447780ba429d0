"""Hostile uploads, small on disk, that would each take far more memory if decoded as they claim.

Each writer returns the file's bytes. Long runs of zeros are compressed once and the compressed
block repeated (a full flush makes deflate blocks independent; gzip allows many members), so a
file that inflates to hundreds of MB is built in milliseconds.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib

import numpy as np
from imaging_samples import dicom_dataset
from PIL import Image


def deflate_zeros(prefix: bytes, zero_bytes: int, raw: bool = True) -> bytes:
    """A raw deflate stream (or a zlib one, with its checksum) of `prefix` followed by `zero_bytes` zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [compressor.compress(prefix), compressor.flush(zlib.Z_FULL_FLUSH)]
    block = 1 << 20
    repeats, rest = divmod(zero_bytes, block)
    if repeats:
        # After a full flush the compressor forgets the past, so every 1 MB of zeros compresses the same.
        parts.append((compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)) * repeats)
    parts.append(compressor.compress(bytes(rest)) + compressor.flush())
    stream = b"".join(parts)
    if raw:
        return stream
    # Adler-32 over zeros: the byte sum `low` stays, the running sum `high` grows by `low` per byte.
    checksum = zlib.adler32(prefix)
    low, high = checksum & 0xFFFF, checksum >> 16
    return b"\x78\xda" + stream + struct.pack(">HH", (high + zero_bytes * low) % 65521, low)


def _dicom_dataset(rows: int, cols: int, frames: int = 1, samples: int = 1, bits: int = 8):
    """A header that claims rows x cols x frames x samples, without pixel data yet."""
    ds = dicom_dataset()
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, samples
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2" if samples == 1 else "RGB"
    if samples > 1:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    return ds


def _dicom_bytes(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_deflate_bomb(side: int = 30000) -> bytes:
    """Deflated Explicit VR Little Endian, side x side 8-bit: the dataset inflates to side^2 bytes (900 MB)."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = _dicom_dataset(side, side)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    written = _dicom_bytes(ds)  # pydicom deflates the dataset; we add the pixel data inside the stream
    start = _meta_end(written)
    header = zlib.decompress(written[start:], -zlib.MAX_WBITS)
    header += struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, side * side)  # Pixel Data, OB, side^2 bytes
    return written[:start] + deflate_zeros(header, side * side)


def _meta_end(data: bytes) -> int:
    """Where the dataset starts: after the preamble, "DICM" and the group length it gives."""
    (group_length,) = struct.unpack("<I", data[140:144])
    return 144 + group_length


def dicom_huge_header(rows: int = 2048, cols: int = 2048, frames: int = 1000) -> bytes:
    """Uncompressed, with a header claiming rows x cols x frames but only a few bytes of pixel data."""
    ds = _dicom_dataset(rows, cols, frames=frames)
    ds.PixelData = bytes(64)
    return _dicom_bytes(ds)


def dicom_rle_bomb(encoded_bytes: int = 16 * 2**20, side: int = 512) -> bytes:
    """RLE Lossless, side x side 8-bit, whose one segment is replicate runs: 64 x `encoded_bytes` decoded."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    ds = _dicom_dataset(side, side)
    ds.file_meta.TransferSyntaxUID = RLELossless
    header = struct.pack("<16I", 1, 64, *([0] * 14))
    ds.PixelData = encapsulate([header + b"\x81\x00" * (encoded_bytes // 2)])
    ds["PixelData"].VR = "OB"
    return _dicom_bytes(ds)


def dicom_lying_jpeg(side: int = 12000) -> bytes:
    """JPEG Baseline, 64 x 64 RGB in the DICOM header, but side x side in the JPEG frame's own header."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 90, 90)).save(buffer, format="JPEG")
    jpeg = bytearray(buffer.getvalue())
    sof = jpeg.index(b"\xff\xc0")  # SOF0: length (2), precision (1), height (2), width (2)
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", side, side)
    ds = _dicom_dataset(64, 64, samples=3)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = encapsulate([bytes(jpeg)])
    ds["PixelData"].VR = "OB"
    return _dicom_bytes(ds)


def tiff_huge_second_page(side: int = 20000) -> bytes:
    """A 2-page TIFF: page 1 is 64 x 64; page 2 is side x side 16-bit, one deflated strip of zeros."""
    small = bytes(range(64)) * 64
    big = deflate_zeros(b"", side * side * 2, raw=False)

    def ifd(width, height, bits, compression, offset, count, next_ifd):
        entries = [(256, 4, width), (257, 4, height), (258, 3, bits), (259, 3, compression), (262, 3, 1),
                   (273, 4, offset), (277, 3, 1), (278, 4, height), (279, 4, count)]
        packed = b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in entries)
        return struct.pack("<H", len(entries)) + packed + struct.pack("<I", next_ifd)

    ifd_size = 2 + 9 * 12 + 4
    small_at, first_ifd = 8, 8 + len(small)
    big_at = first_ifd + 2 * ifd_size
    second_ifd = first_ifd + ifd_size
    return (b"II*\x00" + struct.pack("<I", first_ifd) + small
            + ifd(64, 64, 8, 1, small_at, len(small), second_ifd)
            + ifd(side, side, 16, 8, big_at, len(big), 0) + big)


def nifti_huge_plane(shape=(10000, 10000, 1), dtype=np.float64) -> bytes:
    """A NIfTI-1 (.nii.gz) of zeros; by default 2-D 10000 x 10000 float64: under the voxel limit,
    over the pixel limit, 800 MB of data in 0.8 MB."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header["vox_offset"] = 352
    header.set_sform(np.eye(4), code=1)
    block = 16 * 2**20
    zeros = gzip.compress(bytes(block), compresslevel=9)
    count, rest = divmod(int(np.prod(shape)) * np.dtype(dtype).itemsize, block)
    # A gzip file may hold many members, read as one stream: the same compressed block, repeated.
    return b"".join([gzip.compress(header.binaryblock + bytes(4))] + [zeros] * count + [gzip.compress(bytes(rest))])
