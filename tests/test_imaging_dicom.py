"""brain_tumor.imaging.dicom and .voi: DICOM files written for real with pydicom in tmp_path.

Display: pydicom's Modality LUT (rescale) and VOI LUT (window, SIGMOID, VOI LUT Sequence).
Bounds: the header is checked before pixel data is touched, and the three encodings that can
outgrow their header (deflated dataset, RLE, JPEG frames) are bounded before they are decoded.
"""

import io

import numpy as np
import pytest
from hostile_files import dicom_deflate_bomb, dicom_huge_header, dicom_lying_jpeg, dicom_rle_bomb
from imaging_samples import dicom_dataset, head_phantom, write_dicom
from PIL import Image

from brain_tumor.imaging import ScanError, load_slice


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


def _ramp() -> np.ndarray:
    return np.tile(np.arange(64, dtype=np.uint16) * 64, (64, 1))  # 0 .. 4032 left to right


def test_dicom_sigmoid_window(tmp_path):
    ds = dicom_dataset(_ramp(), window=(2048, 1024))
    ds.VOILUTFunction = "SIGMOID"
    ds.save_as(tmp_path / "s.dcm", enforce_file_format=True)
    scan = load_slice(tmp_path / "s.dcm")
    out = np.asarray(scan.image)[0].astype(float)
    expected = 255 / (1 + np.exp(-4 * (_ramp()[0].astype(float) - 2048) / 1024))  # PS3.3 C.11.2.1.3.1
    assert np.abs(out - expected).max() <= 0.5 + 1e-9
    assert any("SIGMOID" in note for note in scan.notes)


def test_dicom_voi_lut_sequence_preferred_to_window(tmp_path):
    from pydicom.dataset import Dataset

    # An inverting VOI LUT over the 12 stored bits, with 12-bit entries (0 .. 4095 out). Entries of
    # 8 bits would index wrongly: pydicom 3.0.2's apply_voi indexes such a LUT with uint8, so
    # stored values above 255 wrap around.
    lut = np.linspace(4095, 0, 4096).round().astype(np.uint16)
    ds = dicom_dataset(_ramp(), window=(100, 10))
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    item.add_new(0x00283006, "US", lut.tolist())  # LUT Data (US or OW)
    ds.VOILUTSequence = [item]
    ds.save_as(tmp_path / "lut.dcm", enforce_file_format=True)
    scan = load_slice(tmp_path / "lut.dcm")
    assert np.array_equal(np.asarray(scan.image), np.round(lut[_ramp()] / 4095 * 255))
    assert "VOI LUT applied" in scan.notes


def test_dicom_invalid_window_falls_back_to_percentiles(tmp_path):
    scan = load_slice(write_dicom(tmp_path / "w.dcm", _ramp(), window=(100, 0.5)))  # LINEAR needs width >= 1
    assert np.asarray(scan.image).max() == 255
    assert any("percentiles" in note for note in scan.notes)


def test_deflated_dicom_reads_like_the_plain_one(tmp_path):
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    pixels = (head_phantom() * 10).astype(np.uint16)
    ds = dicom_dataset(pixels, window=(1000, 2000))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(tmp_path / "deflated.dcm", enforce_file_format=True)
    plain = load_slice(write_dicom(tmp_path / "plain.dcm", pixels, window=(1000, 2000)))
    deflated = load_slice(tmp_path / "deflated.dcm")
    assert np.array_equal(np.asarray(deflated.image), np.asarray(plain.image)) and deflated.notes == plain.notes


def test_deflate_bomb_refused_before_it_inflates(tmp_path):
    path = tmp_path / "bomb.dcm"
    path.write_bytes(dicom_deflate_bomb())  # 0.9 MB that inflates to 900 MB
    with pytest.raises(ScanError, match="deflate-compressed and inflates to more than 100 MB"):
        load_slice(path)


@pytest.mark.parametrize("rows, cols, frames, expected", [
    (2048, 2048, 1000, r"2048x2048 pixels x 1000 frames: 4,194,304,000 values; the limit is 134,217,728"),
    (10000, 5000, 1, r"DICOM frame is 5000x10000 pixels \(50 megapixels\); the limit is 40 megapixels"),
])
def test_header_size_checked_before_pixel_data(tmp_path, rows, cols, frames, expected):
    path = tmp_path / "claims.dcm"
    path.write_bytes(dicom_huge_header(rows, cols, frames))  # the pixel data holds 64 bytes
    with pytest.raises(ScanError, match=expected):
        load_slice(path)


def test_rle_dicom_reads_like_the_plain_one(tmp_path):
    from pydicom.uid import RLELossless

    pixels = (head_phantom() * 10).astype(np.uint16)
    ds = dicom_dataset(pixels)
    ds.compress(RLELossless, encoding_plugin="pydicom")
    ds.save_as(tmp_path / "rle.dcm", enforce_file_format=True)
    plain = load_slice(write_dicom(tmp_path / "plain.dcm", pixels))
    assert np.array_equal(np.asarray(load_slice(tmp_path / "rle.dcm").image), np.asarray(plain.image))


def test_rle_bomb_refused_before_decoding(tmp_path):
    path = tmp_path / "rle_bomb.dcm"
    path.write_bytes(dicom_rle_bomb(encoded_bytes=5 * 2**20))  # 64 x 5 MB = 320 MB for a 512 x 512 frame
    with pytest.raises(ScanError, match="RLE-compressed to 5 MB; this server decodes RLE frames up to 4 MB"):
        load_slice(path)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, on reading the lying header
def test_jpeg_dicom_frame_must_match_its_header(tmp_path):
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    jpeg = io.BytesIO()
    Image.fromarray(head_phantom().astype(np.uint8)).save(jpeg, format="JPEG", quality=95)
    ds = dicom_dataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 96, 96, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([jpeg.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "jpeg.dcm", enforce_file_format=True)
    scan = load_slice(tmp_path / "jpeg.dcm")
    assert scan.image.size == (96, 96) and np.asarray(scan.image).max() == 255

    path = tmp_path / "lying.dcm"
    path.write_bytes(dicom_lying_jpeg())  # 64 x 64 in the DICOM header, 12000 x 12000 in the JPEG's
    with pytest.raises(ScanError, match="compressed image is 12000x12000 pixels but the DICOM header says 64x64"):
        load_slice(path)
