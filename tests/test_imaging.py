"""File -> slice: every accepted format written for real in tmp_path, and the bad-input matrix.

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

from brain_tumor import imaging
from brain_tumor.imaging import LoadedScan, ScanError, load_slice, sniff_format


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


# --- dicom / nifti writers ---------------------------------------------------------------------


def write_dicom(path, pixels=None, photometric="MONOCHROME2", slope=None, intercept=None, window=None, syntax=None):
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
    ds.save_as(path, enforce_file_format=True)
    return path


def write_nifti(path, volume, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(volume), np.eye(4) if affine is None else affine), str(path))
    return path


# --- raster formats ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif")])
def test_8bit_gray_formats(tmp_path, fmt, suffix):
    path = save_pil(tmp_path / f"scan{suffix}", Image.fromarray(head_phantom().astype(np.uint8)), format=fmt)
    scan = load_slice(path)
    assert isinstance(scan, LoadedScan)
    assert scan.format == fmt and scan.image.mode == "L" and scan.image.size == (96, 96)
    assert scan.num_slices == 1


def test_sniffs_content_not_extension(tmp_path):
    path = save_pil(tmp_path / "really_a_png.jpg", Image.fromarray(head_phantom().astype(np.uint8)), format="PNG")
    assert load_slice(path).format == "PNG"
    assert load_slice(path.read_bytes()).format == "PNG"  # bytes work too


def test_16bit_png_and_tiff_scaled_by_percentiles(tmp_path):
    arr = (head_phantom() * 200).astype(np.uint16)  # values up to 50,000
    for suffix in (".png", ".tif"):
        path = save_pil(tmp_path / f"deep{suffix}", Image.fromarray(arr))
        scan = load_slice(path)
        assert scan.image.mode == "L"
        out = np.asarray(scan.image)
        assert out.max() == 255 and out.min() == 0
        assert any("16-bit" in note for note in scan.notes)


def test_float_tiff(tmp_path):
    path = save_pil(tmp_path / "float.tif", Image.fromarray(head_phantom().astype(np.float32) / 7.0))
    assert np.asarray(load_slice(path).image).max() == 255


def test_rgb_gray_becomes_l_and_colour_stays_rgb(tmp_path):
    gray = head_phantom().astype(np.uint8)
    path = save_pil(tmp_path / "rgb_gray.png", Image.fromarray(np.stack([gray] * 3, axis=-1)))
    assert load_slice(path).image.mode == "L"
    colour = np.stack([gray, gray // 3, 255 - gray], axis=-1)
    path = save_pil(tmp_path / "colour.png", Image.fromarray(colour))
    assert load_slice(path).image.mode == "RGB"


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_rgba_composited_on_black(tmp_path, suffix):
    gray = head_phantom().astype(np.uint8)
    rgba = np.stack([gray, gray, gray, np.where(gray > 0, 255, 0).astype(np.uint8)], axis=-1)
    rgba[..., :3][gray == 0] = 255  # transparent pixels are white underneath
    scan = load_slice(save_pil(tmp_path / f"alpha{suffix}", Image.fromarray(rgba, mode="RGBA")))
    assert scan.image.mode == "L" and np.asarray(scan.image)[0, 0] == 0
    assert any("transparency" in note for note in scan.notes)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
def test_palette_images(tmp_path, suffix):
    img = Image.fromarray(head_phantom().astype(np.uint8)).convert("P")
    assert load_slice(save_pil(tmp_path / f"palette{suffix}", img)).image.mode == "L"


def test_rgb_tiff_and_bmp(tmp_path):
    gray = head_phantom().astype(np.uint8)
    colour = Image.fromarray(np.stack([gray, gray // 2, gray // 4], axis=-1))
    for suffix in (".tif", ".bmp"):
        assert load_slice(save_pil(tmp_path / f"rgb{suffix}", colour)).image.mode == "RGB"


def test_cmyk_jpeg_answered(tmp_path):
    img = Image.fromarray(head_phantom().astype(np.uint8)).convert("CMYK")
    scan = load_slice(save_pil(tmp_path / "cmyk.jpg", img, format="JPEG"))
    assert scan.image.mode in ("L", "RGB")
    assert any("CMYK" in note for note in scan.notes)


def test_all_black_image_answered(tmp_path):
    scan = load_slice(save_pil(tmp_path / "black.png", Image.new("L", (64, 64), 0)))
    assert np.asarray(scan.image).max() == 0  # decoding is fine; the OOD check refuses it later


def test_multipage_tiff_is_a_stack(tmp_path):
    pages = [Image.fromarray(np.full((48, 48), 40 * i, dtype=np.uint8)) for i in range(5)]
    path = tmp_path / "stack.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    scan = load_slice(path)
    assert (scan.num_slices, scan.slice_index) == (5, 2)
    assert np.asarray(load_slice(path, slice_index=4).image)[0, 0] == 160


# --- DICOM ------------------------------------------------------------------------------------


def test_dicom_rescale_and_window(tmp_path):
    raw = np.zeros((64, 64), dtype=np.uint16)
    raw[:, 32:] = 1000
    raw[:, 48:] = 2000
    # stored 1000 -> 1000*2 - 1000 = 1000 (modality units); window 1000 +- 500 -> mid-gray
    path = write_dicom(tmp_path / "a.dcm", raw, slope=2, intercept=-1000, window=(1000, 1001))
    scan = load_slice(path)
    out = np.asarray(scan.image)
    assert scan.format == "DICOM" and scan.image.mode == "L"
    assert out[0, 0] == 0 and out[0, 63] == 255 and 120 <= out[0, 40] <= 135
    assert any("rescale" in n for n in scan.notes) and any("window" in n for n in scan.notes)


def test_dicom_monochrome1_inverted(tmp_path):
    raw = np.zeros((64, 64), dtype=np.uint16)
    raw[:, 32:] = 4000
    mono2 = np.asarray(load_slice(write_dicom(tmp_path / "m2.dcm", raw)).image)
    scan = load_slice(write_dicom(tmp_path / "m1.dcm", raw, photometric="MONOCHROME1"))
    assert np.array_equal(np.asarray(scan.image), 255 - mono2)
    assert "MONOCHROME1 inverted" in scan.notes


def test_dicom_multiframe_is_a_stack(tmp_path):
    frames = np.stack([np.full((48, 48), 500 * (k + 1)) for k in range(5)])
    frames[:, :8, :8] = 0
    path = write_dicom(tmp_path / "multi.dcm", frames)
    scan = load_slice(path)
    assert (scan.num_slices, scan.slice_index) == (5, 2)
    assert load_slice(path, slice_index=4).slice_index == 4
    with pytest.raises(ScanError, match="5 frames"):
        load_slice(path, slice_index=5)


def test_slice_index_ignored_for_2d_images(tmp_path):
    path = save_pil(tmp_path / "flat.png", Image.fromarray(head_phantom().astype(np.uint8)))
    assert load_slice(path, slice_index=7).slice_index == 0


def test_dicom_without_preamble_by_name(tmp_path):
    path = write_dicom(tmp_path / "full.dcm", head_phantom() * 10)
    raw = path.read_bytes()[132:]  # drop the 128-byte preamble and "DICM"
    assert load_slice(raw, filename="x.dcm").format == "DICOM"


# --- NIfTI ------------------------------------------------------------------------------------


def test_nifti_3d_middle_axial_slice_and_slice_index(tmp_path):
    volume = np.zeros((40, 50, 9), dtype=np.int16)
    for k in range(9):
        volume[5:35, 5:45, k] = 100 * (k + 1)
        volume[20, 25, k] = 5000  # one outlier voxel per slice; percentiles ignore it
    for name in ("v.nii", "v.nii.gz"):
        path = write_nifti(tmp_path / name, volume)
        scan = load_slice(path)
        assert scan.format == "NIfTI" and (scan.num_slices, scan.slice_index) == (9, 4)
        assert scan.image.size == (40, 50)  # width = x (left-right), height = y
        assert load_slice(path, slice_index=0).slice_index == 0


def test_nifti_orientation_radiological(tmp_path):
    volume = np.zeros((40, 50, 3), dtype=np.uint8)
    volume[35:, 45:, :] = 200  # high x (patient right), high y (anterior)
    image = np.asarray(load_slice(write_nifti(tmp_path / "o.nii", volume)).image)
    assert image[:5, :5].mean() > 200  # anterior at the top, patient's right on the image's left
    assert image[-5:, -5:].mean() == 0


def test_nifti_finds_axial_axis_in_any_storage_order(tmp_path):
    volume = np.zeros((7, 40, 36), dtype=np.uint8)  # voxel axes: (S, A, R)
    volume[:, 5:35, 5:25] = 100
    affine = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    scan = load_slice(write_nifti(tmp_path / "sar.nii", volume, affine))
    assert (scan.num_slices, scan.slice_index) == (7, 3)
    assert scan.image.size == (36, 40)


def test_plain_nifti_misnamed_nii_gz_is_read(tmp_path):
    path = write_nifti(tmp_path / "plain.nii", (head_phantom()[:, :, None]).astype(np.uint8))
    renamed = tmp_path / "plain.nii.gz"
    renamed.write_bytes(path.read_bytes())
    assert load_slice(renamed).format == "NIfTI"


# --- bad inputs: refused with a message that says what was wrong -------------------------------


def _png_header_only(width, height) -> bytes:
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
        "png_20000x20000": (_png_header_only(20000, 20000), "huge.png", "too large"),
        "png_8000x8000": (_png_header_only(8000, 8000), "big.png", "megapixels"),
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


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_input_refused_with_clear_message(bad_files, tmp_path, name):
    data, filename, expected = bad_files[name]
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(ScanError) as caught:
        load_slice(path)
    message = str(caught.value)
    assert expected.lower() in message.lower(), message
    assert len(message) < 400 and "Traceback" not in message


def test_bad_input_message_lists_accepted_formats(bad_files):
    with pytest.raises(ScanError, match="JPEG, PNG, BMP, TIFF, DICOM"):
        load_slice(bad_files["zip"][0])


def test_slice_index_out_of_range(tmp_path):
    path = write_nifti(tmp_path / "v.nii", np.zeros((40, 40, 5), dtype=np.int16))
    with pytest.raises(ScanError, match="5 slices .*slice 9 does not exist"):
        load_slice(path, slice_index=9)


def test_file_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(imaging.limits, "MAX_FILE_BYTES", 1000)
    path = save_pil(tmp_path / "x.bmp", Image.new("L", (100, 100)))
    with pytest.raises(ScanError, match="limit"):
        load_slice(path)
    with pytest.raises(ScanError, match="limit"):
        load_slice(path.read_bytes())


def test_missing_path():
    with pytest.raises(ScanError, match="No file"):
        load_slice("/no/such/file.png")


def test_sniff_format_names():
    assert sniff_format(b"\xff\xd8\xff\xe0" + bytes(10)) == "JPEG"
    assert sniff_format(b"II*\x00" + bytes(10)) == "TIFF"
